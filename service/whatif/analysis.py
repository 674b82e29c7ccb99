"""``analyse()``: one scenario under several regimes, every fiscal year, with its sensitivity sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.policy.model import AssuranceLevel
from service.policy.regime import Regime
from service.whatif.model import Router, legs, regime_year, sweep
from service.whatif.result import RegimeYear, WhatIf
from service.whatif.scenario import Scenario


def analyse(scenario: Scenario, regimes: Sequence[Regime], policy_oids: Mapping[AssuranceLevel, str]) -> WhatIf:
    routers = [Router(scenario, regime, policy_oids) for regime in regimes]
    years = list(scenario.years)
    rows: list[RegimeYear] = []
    for router in routers:
        mix = legs(router)
        rows.extend(regime_year(router, year, mix) for year in years)
    return WhatIf(
        scenario=scenario.name,
        title=scenario.title,
        municipality=scenario.municipality,
        regimes=[regime.name for regime in regimes],
        fiscal_years=years,
        assumptions=scenario.listed(),
        routes={router.regime.name: router.routes() for router in routers},
        rows=rows,
        sweep=[point for router in routers for point in sweep(router)],
        sweep_year=scenario.sweep_year,
    )
