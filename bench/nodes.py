"""Scenario ``nodes``: ``rest`` issuance on PostgreSQL from one node, then from two (``koshin serve --workers 2``
each, separate processes and ports, one database, one token store), the same clients spread across the nodes;
throughput and the CPU seconds each node's processes used during the measured runs. On one machine the two
nodes share its cores: the figure says what the write path lets through, the CPU what it cost."""

from __future__ import annotations

from typing import Any

from bench.child import in_child
from bench.context import BenchContext
from bench.servers import cpu_seconds, free_port, koshin_serve
from bench.setup import holder_csr_pem
from bench.workers import measure

SCENARIO = "nodes"
SERVICE_WORKERS = 2


def run(ctx: BenchContext) -> None:
    if ctx.postgres_url is None:
        ctx.skip(SCENARIO, "two nodes share one PostgreSQL database: PostgreSQL is not available")
        return
    from bench.postgres import new_database

    algorithm = "p256" if "p256" in ctx.algorithms else ctx.algorithms[0]
    url = new_database(ctx, f"nodes_{algorithm}")
    clients, requests = (2, 6) if ctx.quick else (4, 100)
    ports = [free_port(), free_port()]
    settings = [ctx.home.settings(algorithm, database_url=url, prefix="pg-nodes-", port=p) for p in ports]
    seed = {"home": ctx.home.root, "algorithm": algorithm, "database_url": url, "prefix": "pg-nodes-",
            "tag": f"nodes-{ports[0]}"}  # fmt: skip
    tokens = in_child("bench.setup:seed_actors", seed)
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    params: dict[str, Any] = {"token": tokens["municipal_staff"], "csr_pem": holder_csr_pem(),
                              "requests": requests * ctx.runs + 1}  # fmt: skip
    common = {"algorithm": algorithm, "backend": "postgresql", "clients": clients, "service_workers": SERVICE_WORKERS,
              "requests_per_client": requests}  # fmt: skip
    with koshin_serve(ctx.home, settings[0], SERVICE_WORKERS, ports[0]) as a:
        before = cpu_seconds(a.pid)
        one = measure("bench.http_clients:koshin_client", {**params, "base_urls": urls[:1]}, clients, ctx.runs,
                      count=requests)  # fmt: skip
        used = cpu_seconds(a.pid) - before
        ctx.add_rates(SCENARIO, f"{algorithm} one node c{clients}", one, **common).extra.update(
            cpu_seconds_node_a=round(used, 1)
        )
        with koshin_serve(ctx.home, settings[1], SERVICE_WORKERS, ports[1]) as b:
            before_a, before_b = cpu_seconds(a.pid), cpu_seconds(b.pid)
            two = measure("bench.http_clients:koshin_client", {**params, "base_urls": urls}, clients, ctx.runs,
                          count=requests)  # fmt: skip
            used_a, used_b = cpu_seconds(a.pid) - before_a, cpu_seconds(b.pid) - before_b
        ctx.add_rates(SCENARIO, f"{algorithm} two nodes c{clients}", two, **common).extra.update(
            cpu_seconds_node_a=round(used_a, 1), cpu_seconds_node_b=round(used_b, 1)
        )
