"""Scenario ``rest``: POST /v1/certificates end to end against ``koshin serve --workers 2``, with 1, 2 and 4
concurrent clients in separate processes; SQLite and PostgreSQL; throughput, p50/p99 latency and the RSS of
the service's worker processes after the load; the audit records' integration delay (append to leaf) under it."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from bench.child import in_child
from bench.context import BenchContext
from bench.servers import descendants, free_port, koshin_serve, rss_mib
from bench.setup import holder_csr_pem
from bench.workers import measure

SCENARIO = "rest"
SERVICE_WORKERS = 2


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _backends(ctx: BenchContext, algorithm: str) -> list[tuple[str, str | None, str]]:
    found: list[tuple[str, str | None, str]] = [("sqlite", None, "")]
    if ctx.quick and ctx.postgres_url is not None:
        ctx.skip(f"{SCENARIO} postgresql", "--quick serves SQLite only (the quick wave runs on PostgreSQL)")
    elif ctx.postgres_url is not None:
        from bench.postgres import new_database

        found.append(("postgresql", new_database(ctx, f"rest_{algorithm}"), "pg-rest-"))
    return found


def run(ctx: BenchContext) -> None:
    clients_list = (2,) if ctx.quick else (1, 2, 4)
    requests = 6 if ctx.quick else 100
    csr_pem = holder_csr_pem()
    for algorithm in ctx.algorithms:
        for backend, url, prefix in _backends(ctx, algorithm):
            port = free_port()
            settings = ctx.home.settings(algorithm, database_url=url, prefix=prefix, port=port)
            seed: dict[str, Any] = {"home": ctx.home.root, "algorithm": algorithm, "database_url": url,
                                    "prefix": prefix, "tag": f"{backend}-{port}"}  # fmt: skip
            tokens = in_child("bench.setup:seed_actors", seed)
            since = datetime.now(UTC).isoformat()
            with koshin_serve(ctx.home, settings, SERVICE_WORKERS, port) as server:
                for clients in clients_list:
                    params = {"base_url": f"http://127.0.0.1:{port}", "token": tokens["municipal_staff"],
                              "csr_pem": csr_pem, "requests": requests * ctx.runs + 1}  # fmt: skip
                    runs = measure("bench.http_clients:koshin_client", params, clients, ctx.runs, count=requests)
                    name = f"{algorithm} {backend} c{clients}"
                    common = {"algorithm": algorithm, "backend": backend, "clients": clients,
                              "service_workers": SERVICE_WORKERS, "requests_per_client": requests}  # fmt: skip
                    ctx.add_rates(SCENARIO, name, runs, **common)
                    for q in (0.5, 0.99):
                        samples = [_percentile(r.latencies, q) * 1000 for r in runs]
                        ctx.add(SCENARIO, f"{name} p{int(q * 100)}", "ms", samples, **common)
                delays = in_child("bench.setup:integration_delays", {**seed, "since": since})
                if len(delays) >= ctx.runs:  # one sample per run: the records in append order, cut in ``runs`` parts
                    common = {"algorithm": algorithm, "backend": backend, "records": len(delays)}
                    size = len(delays) // ctx.runs
                    parts = [delays[k * size : (k + 1) * size] for k in range(ctx.runs)]
                    for q in (0.5, 0.99):
                        ctx.add(SCENARIO, f"{algorithm} {backend} audit integration p{int(q * 100)}", "ms",
                                [_percentile(part, q) * 1000 for part in parts], **common)  # fmt: skip
                workers = descendants(server.pid)
                rss = [rss_mib(pid) for pid in workers]
                rss = [value for value in rss if value > 0]
                if rss:
                    ctx.add(SCENARIO, f"{algorithm} {backend} worker RSS", "MiB", [max(rss)],
                            processes=len(rss), median_mib=round(statistics.median(rss), 1))  # fmt: skip
