"""The scenarios in their order, the bench home, and the ratios of issue 6 computed from one run."""

from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.child import in_child
from bench.context import BenchContext
from bench.home import prepare
from bench.ratios import ratios
from bench.report import machine

SCENARIOS = {
    "token-sign": "bench.token_sign",
    "issue": "bench.issue",
    "rest": "bench.rest",
    "peer-openssl": "bench.peer_openssl",
    "peer-cfssl": "bench.peer_cfssl",
    "ocsp": "bench.ocsp",
    "ocsp-http": "bench.ocsp_http",
    "crl": "bench.crl",
    "wave": "bench.wave",
    "nodes": "bench.nodes",
    "incident": "bench.incident",
}
WAVE_RENEWALS = 50_066  # Miyazaki's expected card renewals in FY2025


@contextmanager
def bench_root(home: Path | None) -> Iterator[Path]:
    """``home`` as given, or a temporary directory removed afterwards: never the operator's KOSHIN_HOME."""
    if home is not None:
        yield home
        return
    root = Path(tempfile.mkdtemp(prefix="koshin-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_bench(
    scenarios: list[str],
    *,
    home: Path | None,
    algorithms: list[str],
    quick: bool,
    runs: int,
    seconds: float | None,
    wave_size: int | None,
    postgres: bool,
    console: Console,
) -> tuple[BenchContext, dict[str, Any]]:
    started = time.monotonic()
    with bench_root(home) as root:
        bench_home = prepare(root)
        ctx = BenchContext(
            home=bench_home,
            algorithms=algorithms,
            quick=quick,
            runs=runs,
            seconds=seconds if seconds is not None else (0.4 if quick else 3.0),
            console=console,
            wave_size=wave_size if wave_size is not None else (40 if quick else WAVE_RENEWALS),
        )
        for algorithm in algorithms:
            in_child("bench.setup:init_hierarchy", {"home": root, "algorithm": algorithm, "prefix": ""})
        with _postgres(ctx, enabled=postgres):
            for name in scenarios:
                console.print(f"[bold]{name}[/]")
                module = importlib.import_module(SCENARIOS[name])
                begun = time.monotonic()
                try:
                    module.run(ctx)
                except Exception as exc:  # one broken scenario must not hide the others' figures
                    ctx.skip(name, f"failed: {type(exc).__name__}: {exc}")
                console.print(f"  [dim]{name} took {time.monotonic() - begun:.1f} s[/]")
    context = {
        **machine(),
        "scenarios": scenarios,
        "algorithms": algorithms,
        "quick": quick,
        "runs": ctx.runs,
        "seconds_per_run": ctx.seconds,
        "wave_size": ctx.wave_size,
        "duration_s": round(time.monotonic() - started, 1),
    }
    return ctx, context


@contextmanager
def _postgres(ctx: BenchContext, *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from bench.postgres import throwaway_server

    with throwaway_server(ctx) as url:
        ctx.postgres_url = url
        yield


__all__ = ["SCENARIOS", "ratios", "run_bench"]
