"""What ``koshin whatif`` computes, as plain frozen data: the model fills it, the table, JSON, CSV, plots and the
HTML report only read it. Every number keeps the rule that decided it and the assumption it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Assumption:
    """One input number with where it comes from (``source``) and whether it is a measured fact or a guess."""

    name: str
    value: float | str
    unit: str
    source: str
    assumed: bool = False  # True: a modelling assumption, not a figure from the seed or the brief


@dataclass(frozen=True)
class Route:
    """How one operation was decided on one channel under one regime: the policy's own answer."""

    operation: str
    channel: str
    allowed: bool
    rule_id: str
    assurance: str | None  # e.g. "IAL3"; None when refused
    reason: str
    basis: str


@dataclass(frozen=True)
class RegimeYear:
    """One regime in one fiscal year for one scenario."""

    regime: str
    fiscal_year: str
    renewals: int  # holders due for a renewal that year (card renewals + certificate-only renewals)
    counter_visits: int  # visits to the municipal counter (an application and a hand-over are two visits)
    counter_staff_hours: float
    working_days: float  # counter_staff_hours / (counters x opening hours per day)
    by_channel: dict[str, int]  # channel -> visits or requests handled there (all operations)
    by_level: dict[str, int]  # assurance level -> certificates issued at that level
    certificates: int
    peak_certificates_per_second: float
    refused: int = 0  # holders whose every channel was refused (should be 0: the counter always works)


@dataclass(frozen=True)
class SweepPoint:
    """Counter hours in ``fiscal_year`` under ``regime`` when ``uptake`` (0-1) of holders would leave the counter."""

    regime: str
    fiscal_year: str
    uptake: float
    counter_staff_hours: float


@dataclass(frozen=True)
class Measured:
    """``--run N``: the CA side measured on the live service for a scaled run of the same mix."""

    regime: str
    requests: int
    certificates: int
    seconds: float
    certificates_per_second: float
    by_channel: dict[str, int]  # channel -> decisions recorded there (applications, deliveries)
    holders: int = 0
    by_level: dict[str, int] = field(default_factory=dict)  # assurance level -> certificates issued
    fiscal_year: str = ""  # the year whose mix was scaled down


@dataclass(frozen=True)
class WhatIf:
    scenario: str
    title: str
    municipality: str
    regimes: list[str]
    fiscal_years: list[str]
    assumptions: list[Assumption]
    routes: dict[str, list[Route]]  # regime -> how each operation x channel was decided
    rows: list[RegimeYear]
    sweep: list[SweepPoint]
    sweep_year: str
    measured: list[Measured] = field(default_factory=list)

    def row(self, regime: str, fiscal_year: str) -> RegimeYear:
        for row in self.rows:
            if row.regime == regime and row.fiscal_year == fiscal_year:
                return row
        raise KeyError(f"no result for {regime} in {fiscal_year}")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
