"""The ``koshin whatif`` HTML report: one self-contained page from a ``WhatIf`` (templates/report.html.j2).

No external resource of any kind: the plots are SVG ``data:`` images (inert, so nothing in them runs), the style
and the one script are inline, and a Content-Security-Policy allowing only those is in the page itself. Every
value is autoescaped; the only markup inserted as is, is what this module builds.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from service.whatif import plots
from service.whatif.result import RegimeYear, WhatIf

# After load: how many plot images decoded and laid out with a width, for a headless browser to read back.
_SCRIPT = """
(function () {
  function count() {
    var n = 0;
    document.querySelectorAll("img.plot").forEach(function (img) {
      if (img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0) { n += 1; }
    });
    document.body.dataset.plots = String(n);
  }
  if (document.readyState === "complete") { count(); } else { window.addEventListener("load", count); }
})();
"""


def _script_hash() -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{_script_hash()}'; "
    "base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class _Figure:
    name: str
    caption: str
    src: str  # a data: URI


@dataclass(frozen=True)
class _Year:
    fiscal_year: str
    channels: list[str]
    rows: list[RegimeYear]


def _number(value: float | int, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _rate(value: float) -> str:
    """Three significant figures below 100 (0.00203, 4.87, 48.7), whole numbers above."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.6g}"


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("service.whatif", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["number"] = _number
    env.filters["value"] = _value
    env.filters["rate"] = _rate
    return env


def _figures(w: WhatIf) -> list[_Figure]:
    figures = []
    for plot in plots.PLOTS:
        encoded = base64.b64encode(plots.svg(plot, w).encode("utf-8")).decode("ascii")
        figures.append(_Figure(plot.name, plot.caption, f"data:image/svg+xml;base64,{encoded}"))
    return figures


def _years(w: WhatIf) -> list[_Year]:
    years = []
    for year in w.fiscal_years:
        rows = [row for regime in w.regimes for row in w.rows if row.regime == regime and row.fiscal_year == year]
        channels = list(dict.fromkeys(channel for row in rows for channel in row.by_channel))
        years.append(_Year(year, channels, rows))
    return years


def render_report(w: WhatIf) -> str:
    """The whole report as one HTML document (UTF-8)."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        w=w,
        years=_years(w),
        figures=_figures(w),
        csp=CONTENT_SECURITY_POLICY,
        script=Markup(_SCRIPT),  # noqa: S704 - a constant of this module, hashed into the CSP above
        assumed=sum(1 for a in w.assumptions if a.assumed),
    )


def write_report(w: WhatIf, path: Path) -> Path:
    """Write ``render_report(w)`` to ``path`` (its directory made if missing); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(w), encoding="utf-8")
    return path
