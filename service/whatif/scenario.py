"""What-if inputs as data: scenarios (a municipality's renewal volumes per fiscal year), the shared assumptions
(each number with its source) and the channel routes, all YAML under profiles/whatif/, validated at load.

A scenario may override any assumption, and so may the command line (``--set NAME=VALUE``); an unknown name is
an error, never silently a new number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.policy.model import Channel, Evidence, Role
from service.whatif.errors import ScenarioInvalid, ScenarioNotFound
from service.whatif.result import Assumption

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssumptionSpec(_Strict):
    value: float
    source: str = Field(min_length=1)
    assumed: bool = False


class YearDemand(_Strict):
    card_renewals: int = Field(default=0, ge=0)
    certificate_renewals: int = Field(default=0, ge=0)  # e-certificate renewals without a new card


class ScenarioFile(_Strict):
    name: str
    title: str
    municipality: str
    source: str = Field(min_length=1)
    years: dict[str, YearDemand] = Field(min_length=1)
    sweep_year: str
    assumptions: dict[str, AssumptionSpec] = Field(default_factory=dict)


class ChannelRoute(_Strict):
    role: Role
    same_municipality: bool
    evidence: frozenset[Evidence]
    key_generating_chip_adds: frozenset[Evidence] = frozenset()
    staffed_by_municipality: bool = False
    basis: str


class DeliveryRoute(_Strict):
    channel: Channel
    roles: tuple[Role, ...] = Field(min_length=1)
    at_application: frozenset[Evidence]
    basis: str


class RoutesFile(_Strict):
    channels: dict[Channel, ChannelRoute]
    delivery: DeliveryRoute


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    municipality: str
    source: str
    years: dict[str, YearDemand]
    sweep_year: str
    assumptions: dict[str, AssumptionSpec]
    routes: RoutesFile

    def value(self, name: str) -> float:
        try:
            return self.assumptions[name].value
        except KeyError:
            raise ScenarioInvalid(f"scenario {self.name!r}: no assumption {name!r}") from None

    def listed(self) -> list[Assumption]:
        """Every input with its source: the demand first, then the assumptions by name."""
        demand = [
            Assumption(f"{year}.{kind}", float(count), "holders", self.source)
            for year, want in self.years.items()
            for kind, count in (
                ("card_renewals", want.card_renewals),
                ("certificate_renewals", want.certificate_renewals),
            )
            if count
        ]
        unit = {"minutes": "minutes", "uptake": "share", "hours": "hours/day", "days": "days/year"}
        return demand + [
            Assumption(name, spec.value, unit.get(name.split(".")[0], ""), spec.source, spec.assumed)
            for name, spec in sorted(self.assumptions.items())
        ]

    def with_values(self, overrides: dict[str, float]) -> Scenario:
        """The same scenario with some assumptions changed (``--set``), each marked as the caller's."""
        changed = dict(self.assumptions)
        for name, value in overrides.items():
            if name not in changed:
                known = ", ".join(sorted(changed))
                raise ScenarioInvalid(f"no assumption {name!r} to set (known: {known})")
            changed[name] = AssumptionSpec(value=value, source="set on the command line (--set)", assumed=True)
        return replace(self, assumptions=changed)


def _directory(directory: Path | None) -> Path:
    return Path(str(resources.files("profiles") / "whatif")) if directory is None else directory


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioInvalid(f"{path}: {exc}") from exc


def available_scenarios(directory: Path | None = None) -> list[str]:
    skip = {"assumptions", "routes"}
    return sorted(p.stem for p in _directory(directory).glob("*.yaml") if p.stem not in skip)


def load_scenario(name: str, directory: Path | None = None) -> Scenario:
    """Load scenario ``name`` with the shared assumptions (its own override them) and the channel routes."""
    base = _directory(directory)
    path = base / f"{name}.yaml"
    if not _NAME.match(name) or name in {"assumptions", "routes"} or not path.is_file():
        known = ", ".join(available_scenarios(directory)) or "none"
        raise ScenarioNotFound(f"no what-if scenario {name!r} in {base} (known: {known})")
    try:
        scenario = ScenarioFile.model_validate(_yaml(path))
        shared = {k: AssumptionSpec.model_validate(v) for k, v in (_yaml(base / "assumptions.yaml") or {}).items()}
        routes = RoutesFile.model_validate(_yaml(base / "routes.yaml"))
    except ValidationError as exc:
        raise ScenarioInvalid(f"what-if scenario {name!r}: {exc}") from exc
    unknown = sorted(set(scenario.assumptions) - set(shared))
    if unknown:
        raise ScenarioInvalid(f"scenario {name!r} overrides unknown assumptions: {', '.join(unknown)}")
    if scenario.sweep_year not in scenario.years:
        raise ScenarioInvalid(f"scenario {name!r}: sweep_year {scenario.sweep_year} is not one of its years")
    return Scenario(
        name=scenario.name,
        title=scenario.title,
        municipality=scenario.municipality,
        source=scenario.source,
        years=scenario.years,
        sweep_year=scenario.sweep_year,
        assumptions={**shared, **scenario.assumptions},
        routes=routes,
    )
