"""Results of a benchmark run: medians of repeated runs, ratios, the table and the JSON lines."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Result:
    """One measured figure: a rate (ops/s), a duration (s) or a size (MiB), as the median of ``samples``."""

    scenario: str
    name: str
    unit: str  # "/s", "s", "MiB", "ms"
    samples: list[float]
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            median=self.median,
            min=min(self.samples, default=None),
            max=max(self.samples, default=None),
            runs=len(self.samples),
        )
        return data


@dataclass
class Ratio:
    """A target from issue 6: ``numerator / denominator`` against ``target`` (>= unless ``at_most``)."""

    name: str
    numerator: str
    denominator: str
    value: float | None
    target: float
    at_most: bool = False

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.target if self.at_most else self.value >= self.target


@dataclass
class Skip:
    scenario: str
    reason: str


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("cryptography", "python-pkcs11", "pkilint", "sqlmodel", "fastapi", "uvicorn", "asn1crypto"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "ms":
        return f"{value:,.2f} ms"
    return f"{value:,.1f} {unit}"


def table(results: list[Result], ratios: list[Ratio], skips: list[Skip], console: Console) -> None:
    figures = Table(title="koshin bench: figures (median of runs, min..max)")
    for column in ("scenario", "figure", "median", "min..max", "runs", "parameters"):
        figures.add_column(column)
    for r in results:
        span = f"{_fmt(min(r.samples), r.unit)}..{_fmt(max(r.samples), r.unit)}" if r.samples else "-"
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        figures.add_row(r.scenario, r.name, _fmt(r.median, r.unit), span, str(len(r.samples)), params)
    console.print(figures)
    if ratios:
        targets = Table(title="ratios against the targets (same run)")
        for column in ("ratio", "value", "target", "met"):
            targets.add_column(column)
        for q in ratios:
            value = "-" if q.value is None else f"{q.value:.2f}"
            target = f"{'<=' if q.at_most else '>='} {q.target:g}"
            met = {True: "yes", False: "NO", None: "n/a"}[q.met]
            targets.add_row(f"{q.name}  ({q.numerator} / {q.denominator})", value, target, met)
        console.print(targets)
    for s in skips:
        console.print(f"[yellow]skipped {s.scenario}:[/] {s.reason}")


def json_lines(results: list[Result], ratios: list[Ratio], skips: list[Skip], context: dict[str, Any]) -> list[str]:
    lines = [json.dumps({"kind": "run", **context}, default=str)]
    lines += [json.dumps({"kind": "result", **r.as_json()}, default=str) for r in results]
    lines += [json.dumps({"kind": "ratio", **asdict(q), "met": q.met}, default=str) for q in ratios]
    lines += [json.dumps({"kind": "skip", **asdict(s)}) for s in skips]
    return lines
