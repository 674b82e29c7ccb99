"""What every scenario is given: the bench home, sizes (full or --quick), where results and skips go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench.home import BenchHome
from bench.report import Result, Skip
from bench.workers import RunResult


@dataclass
class BenchContext:
    home: BenchHome
    algorithms: list[str]  # CA key algorithms to measure: "rsa2048", "p256"
    quick: bool
    runs: int  # runs per figure (median reported); at least 3
    seconds: float  # duration of one timed run of a rate scenario
    console: Console
    wave_size: int
    postgres_url: str | None = None  # a server URL (database created per use) or None: skip PostgreSQL
    results: list[Result] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)

    def add(self, scenario: str, name: str, unit: str, samples: list[float], **params: Any) -> Result:
        result = Result(scenario, name, unit, samples, params)
        self.results.append(result)
        self.console.print(f"  {scenario:13} {name:34} {statistics_line(result)}")
        return result

    def add_rates(self, scenario: str, name: str, runs: list[RunResult], **params: Any) -> Result:
        result = self.add(scenario, name, "/s", [r.rate for r in runs], **params)
        rss = max(kib for r in runs for kib in r.peak_rss_kib) / 1024
        result.extra["peak_rss_mib_per_worker"] = round(rss, 1)
        return result

    def skip(self, scenario: str, reason: str) -> None:
        self.skips.append(Skip(scenario, reason))
        self.console.print(f"  [yellow]{scenario}: skipped: {reason}[/]")

    def find(self, scenario: str, name: str) -> Result | None:
        return next((r for r in self.results if r.scenario == scenario and r.name == name), None)


def statistics_line(result: Result) -> str:
    if not result.samples:
        return "-"
    low, high = min(result.samples), max(result.samples)
    return f"{result.median:,.2f}{result.unit}  ({low:,.2f}..{high:,.2f}, {len(result.samples)} runs)"
