"""The three ``koshin whatif`` plots, drawn from a ``WhatIf`` only: counter staff-hours per regime and fiscal year,
the uptake sweep, and the assurance-level mix. SVG text for the HTML report, PNG files for ``--plots DIR``.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, never through pyplot: no global figure
registry to leak into, no display, and each figure is freed when its function returns. Labels stay ASCII; a
Japanese font (IPA Gothic, Noto Sans CJK) is the fallback when installed, DejaVu Sans alone otherwise.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot; this module itself never does

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from service.whatif.result import WhatIf

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Japanese fonts tried in order (Debian fonts-ipafont-gothic, fonts-noto-cjk); any that is installed is added
# behind DejaVu Sans, so a glyph DejaVu lacks is drawn from it.
_CJK_FONT_FILES = (
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf"),
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
_SIZE = (8.0, 4.5)  # inches
_PNG_DPI = 150
_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINES = ("-", "--", "-.", ":")


@functools.cache
def _style() -> dict[RcKeyType, Any]:
    families = ["DejaVu Sans"]
    for path in _CJK_FONT_FILES:
        if not path.is_file():
            continue
        try:
            font_manager.fontManager.addfont(str(path))
            name = font_manager.FontProperties(fname=str(path)).get_name()
        except (OSError, RuntimeError, ValueError):
            continue  # an unreadable font file: DejaVu Sans still draws every ASCII label
        if name not in families:
            families.append(name)
    return {
        "font.family": families,
        "svg.fonttype": "path",  # text as outlines: the SVG needs no font on the reader's side
        "svg.hashsalt": "koshin-whatif",  # stable element ids, so the same result gives the same file
        "axes.grid": True,
        "axes.grid.axis": "y",
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


@contextmanager
def _drawing() -> Iterator[None]:
    with matplotlib.rc_context(_style()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        yield


def _thousands(value: float, _position: float | None = None) -> str:
    return f"{value:,.0f}"


def _empty(figure: Figure, title: str) -> None:
    ax = figure.subplots()
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _legend(ax: Axes, title: str) -> None:
    ax.legend(title=title, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _levels(names: set[str]) -> list[str]:
    """Strongest first (IAL3, IAL2, IAL1: the bottom of each stack), then "none" (refused)."""
    return sorted(names - {"none"}, reverse=True) + sorted(names & {"none"})


def _counter_hours(w: WhatIf) -> Figure:
    figure = Figure(figsize=_SIZE, layout="constrained")
    title = f"Counter staff-hours per fiscal year and regime ({w.scenario})"
    if not w.regimes or not w.fiscal_years:
        _empty(figure, title)
        return figure
    ax = figure.subplots()
    width = 0.8 / len(w.regimes)
    rows = {(row.regime, row.fiscal_year): row for row in w.rows}
    for i, regime in enumerate(w.regimes):
        offsets = [x - 0.4 + width * (i + 0.5) for x in range(len(w.fiscal_years))]
        hours = [rows[regime, year].counter_staff_hours if (regime, year) in rows else 0.0 for year in w.fiscal_years]
        ax.bar(offsets, hours, width, label=regime)
    ax.set_xticks(range(len(w.fiscal_years)), w.fiscal_years)
    ax.set_title(title)
    ax.set_xlabel("Fiscal year")
    ax.set_ylabel("Counter staff-hours (h)")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    _legend(ax, "Regime")
    return figure


def _sweep(w: WhatIf) -> Figure:
    figure = Figure(figsize=_SIZE, layout="constrained")
    title = f"Counter staff-hours in {w.sweep_year} against uptake of the non-counter channels ({w.scenario})"
    points = [point for point in w.sweep if point.fiscal_year == w.sweep_year]
    if not points:
        _empty(figure, title)
        return figure
    ax = figure.subplots()
    for i, regime in enumerate(w.regimes):
        line = sorted((p.uptake * 100, p.counter_staff_hours) for p in points if p.regime == regime)
        if line:  # later lines thinner, with smaller markers of another shape: equal regimes stay visible
            ax.plot([x for x, _ in line], [y for _, y in line], label=regime, marker=_MARKERS[i % len(_MARKERS)],
                    linestyle=_LINES[i % len(_LINES)], linewidth=max(1.0, 3.5 - 0.6 * i),
                    markersize=max(3.0, 10.0 - 1.7 * i))  # fmt: skip
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title, wrap=True)
    ax.set_xlabel("Uptake: holders who would leave the counter where allowed (%)")
    ax.set_ylabel("Counter staff-hours (h)")
    _legend(ax, "Regime")
    return figure


def _assurance_mix(w: WhatIf) -> Figure:
    figure = Figure(figsize=_SIZE, layout="constrained")
    title = f"Certificates per assurance level in {w.sweep_year} ({w.scenario})"
    rows = {row.regime: row for row in w.rows if row.fiscal_year == w.sweep_year}
    levels = _levels({level for row in rows.values() for level in row.by_level})
    if not w.regimes or not levels:
        _empty(figure, title)
        return figure
    ax = figure.subplots()
    bottom = [0.0] * len(w.regimes)
    for level in levels:
        counts = [float(rows[r].by_level.get(level, 0)) if r in rows else 0.0 for r in w.regimes]
        ax.bar(range(len(w.regimes)), counts, 0.6, bottom=bottom, label=level)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_ylim(0, max(max(bottom) * 1.08, 1.0))
    ax.set_xticks(
        range(len(w.regimes)),
        w.regimes,
        rotation=20 if len(w.regimes) > 4 else 0,
        ha="right" if len(w.regimes) > 4 else "center",
    )
    ax.set_title(title)
    ax.set_xlabel("Regime")
    ax.set_ylabel("Certificates issued (count)")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    _legend(ax, "Assurance level")
    return figure


@dataclass(frozen=True)
class Plot:
    """One plot of the report: ``name`` is its file stem, ``caption`` its alternative text."""

    name: str
    caption: str
    draw: Callable[[WhatIf], Figure]


PLOTS = (
    Plot("counter-hours", "Counter staff-hours per regime and fiscal year", _counter_hours),
    Plot("sweep", "Counter staff-hours against uptake, one line per regime", _sweep),
    Plot("assurance-mix", "Certificates per assurance level per regime", _assurance_mix),
)


def _render(plot: Plot, w: WhatIf, fmt: str) -> bytes:
    with _drawing():
        figure = plot.draw(w)
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {}  # no timestamp: same result, same bytes
        figure.savefig(buffer, format=fmt, dpi=_PNG_DPI, metadata=metadata)
        figure.clear()
    return buffer.getvalue()


def svg(plot: Plot, w: WhatIf) -> str:
    """``plot`` of ``w`` as a standalone SVG document."""
    return _render(plot, w, "svg").decode("utf-8")


def png(plot: Plot, w: WhatIf) -> bytes:
    return _render(plot, w, "png")


def counter_hours_figure(w: WhatIf) -> str:
    return svg(PLOTS[0], w)


def sweep_figure(w: WhatIf) -> str:
    return svg(PLOTS[1], w)


def assurance_mix_figure(w: WhatIf) -> str:
    return svg(PLOTS[2], w)


def write_plots(w: WhatIf, directory: Path) -> list[Path]:
    """Write the three plots as ``<name>.png`` into ``directory`` (made if missing); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for plot in PLOTS:
        path = directory / f"{plot.name}.png"
        path.write_bytes(png(plot, w))
        paths.append(path)
    return paths
