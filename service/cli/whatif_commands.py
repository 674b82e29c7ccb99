"""``koshin whatif``: a municipality's counter load per regime and fiscal year, from the regimes' own rules.

Pure computation over profiles/whatif/ and profiles/policy/ (no token, no database); ``--run N`` also drives a
scaled run of the same mix through a live service (service/cli/whatif_run.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ca.profiles import load_profiles
from service.cli.context import console, errors
from service.cli.policy_commands import _policy_directory
from service.policy.regime import available_regimes, load_regime
from service.settings import Settings
from service.whatif.analysis import analyse
from service.whatif.result import WhatIf
from service.whatif.scenario import Scenario, load_scenario

RUN_HELP = (
    "Also drive N holders of the sweep year's mix through the live service per regime (embedded home) and "
    "report the CA side measured."
)


def _overrides(pairs: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--set takes NAME=NUMBER, not {pair!r}") from None
        if not sep:
            raise typer.BadParameter(f"--set takes NAME=NUMBER, not {pair!r}")
    return values


def default_regimes(known: list[str]) -> list[str]:
    """current-2022, then the proposals in the order of their numbers."""
    proposals = [n for n in known if n.startswith("proposal-") and n.removeprefix("proposal-").isdigit()]
    return [n for n in known if n == "current-2022"] + sorted(proposals, key=lambda n: int(n.split("-")[1]))


def compute(scenario: Scenario, regimes: list[str] | None = None) -> WhatIf:
    settings = Settings()
    directory = _policy_directory(settings)
    names = regimes or default_regimes(available_regimes(directory))
    oids = load_profiles(settings.profiles_dir).hierarchy.assurance_policies
    return analyse(scenario, [load_regime(name, directory) for name in names], oids)


def csv_text(result: WhatIf) -> str:
    """One line per regime and fiscal year; channels and levels as columns of their own."""
    channels = sorted({c for row in result.rows for c in row.by_channel})
    levels = sorted({lv for row in result.rows for lv in row.by_level})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["scenario", "regime", "fiscal_year", "renewals", "counter_visits", "counter_staff_hours",
                     "working_days", "certificates", "peak_certificates_per_second",
                     *(f"channel:{c}" for c in channels), *(f"level:{lv}" for lv in levels)])  # fmt: skip
    for row in result.rows:
        writer.writerow([result.scenario, row.regime, row.fiscal_year, row.renewals, row.counter_visits,
                         row.counter_staff_hours, row.working_days, row.certificates,
                         row.peak_certificates_per_second, *(row.by_channel.get(c, 0) for c in channels),
                         *(row.by_level.get(lv, 0) for lv in levels)])  # fmt: skip
    return out.getvalue()


def _table(result: WhatIf) -> Table:
    table = Table(title=f"{result.title} — {result.municipality}")
    for column in ("fiscal year", "regime", "renewals", "counter visits", "counter staff-hours", "working days",
                   "moved off the counter", "certificates by level", "CA peak cert/s"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("fiscal year", "regime", "moved off the counter",
                         "certificates by level") else "right")  # fmt: skip
    for year in result.fiscal_years:
        for regime in result.regimes:
            row = result.row(regime, year)
            moved = ", ".join(f"{c} {n:,}" for c, n in row.by_channel.items() if c != "counter_in_person") or "-"
            levels = ", ".join(f"{lv} {n:,}" for lv, n in row.by_level.items()) or "-"
            table.add_row(year, regime, f"{row.renewals:,}", f"{row.counter_visits:,}",
                          f"{row.counter_staff_hours:,.1f}", f"{row.working_days:,.1f}", moved, levels,
                          f"{row.peak_certificates_per_second:.3f}")  # fmt: skip
        table.add_section()
    return table


def _sweep_table(result: WhatIf) -> Table:
    share = "share of holders who would leave the counter"
    table = Table(title=f"Counter staff-hours in {result.sweep_year} against uptake ({share})")
    table.add_column("regime")
    uptakes = sorted({p.uptake for p in result.sweep})
    for u in uptakes:
        table.add_column(f"{u:.0%}", justify="right")
    for regime in result.regimes:
        hours = {p.uptake: p.counter_staff_hours for p in result.sweep if p.regime == regime}
        table.add_row(regime, *(f"{hours[u]:,.0f}" for u in uptakes))
    return table


def _measured_table(result: WhatIf) -> Table:
    year = result.measured[0].fiscal_year
    table = Table(title=f"Measured on the live service: a scaled run of {year}'s mix (--run)")
    for column in ("regime", "holders", "decisions", "certificates", "seconds", "cert/s measured",
                   "model's peak cert/s", "by channel", "by level"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("regime", "by channel", "by level") else "right")
    for m in result.measured:
        peak = result.row(m.regime, m.fiscal_year).peak_certificates_per_second
        table.add_row(m.regime, f"{m.holders:,}", f"{m.requests:,}", f"{m.certificates:,}", f"{m.seconds:.1f}",
                      f"{m.certificates_per_second:.1f}", f"{peak:.3f}",
                      ", ".join(f"{c} {n:,}" for c, n in m.by_channel.items()),
                      ", ".join(f"{lv} {n:,}" for lv, n in m.by_level.items()))  # fmt: skip
    return table


def whatif(
    scenario: Annotated[
        str, typer.Argument(help="Scenario in profiles/whatif/ (miyazaki, special-ward, matsuyama, national).")
    ] = "miyazaki",
    regime: Annotated[
        list[str] | None, typer.Option("--regime", help="Regime(s) (default: current-2022 and every proposal).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Change an assumption: NAME=NUMBER (e.g. uptake.kiosk_face_match=0.4, key_generating_chip=1)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write one CSV line per regime and year.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Write the plots (PNG) into this directory.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the self-contained HTML report.")] = None,
    run: Annotated[
        int | None,
        typer.Option("--run", min=1, max=100_000, help=RUN_HELP),
    ] = None,
) -> None:
    """Counter visits, staff-hours, channels, assurance levels and CA load of a renewal wave under each regime."""
    chosen = load_scenario(scenario, _whatif_directory()).with_values(_overrides(set_ or []))
    result = compute(chosen, regime)
    if run is not None:
        from service.cli.whatif_run import measure

        result = replace(result, measured=measure(result, chosen, run, errors))
    if csv_file is not None:
        csv_file.write_text(csv_text(result), encoding="utf-8")
    if plots is not None:
        from service.whatif.plots import write_plots

        plots.mkdir(parents=True, exist_ok=True)
        write_plots(result, plots)
    if html is not None:
        from service.whatif.report import write_report

        write_report(result, html)
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=1))
        return
    console.print(_table(result))
    console.print(_sweep_table(result))
    if result.measured:
        console.print(_measured_table(result))
    for done, what in ((csv_file, "CSV"), (plots, "plots"), (html, "HTML report")):
        if done is not None:
            console.print(f"{what}: {done}")


def _whatif_directory() -> Path | None:
    """``KOSHIN_PROFILES_DIR`` has the shipped layout, so its scenarios are in ``whatif/``."""
    settings = Settings()
    return settings.profiles_dir / "whatif" if settings.profiles_dir is not None else None
