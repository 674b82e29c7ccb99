"""``koshin bench``: the benchmark harness (ratios against the token's limit and against real peers).

Every figure is the median of at least three runs in one invocation on one machine; the targets are ratios
between figures of the same run, because shared machines drift. See README, "Figures".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from service.cli.context import console


def bench(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(
            help="token-sign, issue, rest, peer-openssl, peer-cfssl, ocsp, ocsp-http, crl, wave, nodes, incident "
            "(default: all)."
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Every scenario, small: a smoke run (well under a minute).")
    ] = False,
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the JSON lines to this file.")] = None,
    home: Annotated[
        Path | None,
        typer.Option(help="Bench home (created if missing). Default: a temporary directory, removed after."),
    ] = None,
    algorithm: Annotated[
        list[str] | None, typer.Option(help="CA key algorithm(s): rsa2048, p256 (default: both; --quick: p256).")
    ] = None,
    runs: Annotated[int, typer.Option(min=3, help="Runs per figure; the median is reported.")] = 3,
    seconds: Annotated[float | None, typer.Option(help="Duration of one timed run of a rate scenario.")] = None,
    wave: Annotated[int | None, typer.Option(help="Card renewals in the wave (default 50,066; --quick: 40).")] = None,
    postgres: Annotated[bool, typer.Option(help="Also run rest and wave on a throwaway PostgreSQL server.")] = True,
) -> None:
    """Benchmark koshin against the token's limit and against real peers; print a table and JSON lines."""
    from bench.ratios import ratios
    from bench.report import json_lines, table
    from bench.runner import SCENARIOS, run_bench

    chosen = scenarios or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    algorithms = algorithm or (["p256"] if quick else ["rsa2048", "p256"])
    if any(a not in ("rsa2048", "p256") for a in algorithms):
        raise typer.BadParameter("--algorithm takes rsa2048 or p256")
    started = time.monotonic()
    ctx, context = run_bench(
        chosen,
        home=home,
        algorithms=algorithms,
        quick=quick,
        runs=runs,
        seconds=seconds,
        wave_size=wave,
        postgres=postgres,
        console=console,
    )
    found = ratios(ctx)
    table(ctx.results, found, ctx.skips, console)
    lines = json_lines(ctx.results, found, ctx.skips, context)
    for line in lines:
        console.out(line, highlight=False)
    if json_file is not None:
        json_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print(f"bench finished in {time.monotonic() - started:.1f} s")
