"""Regimes: ordered rule lists held as YAML in profiles/policy/, validated at load (unknown keys are errors).

A regime file holds either ``rules`` (a full regime) or ``base`` plus ``changes`` (a proposal): each change
replaces a rule, inserts one before another, or removes one, and says ``because`` with a citation. A base must
itself be a full regime. Rule ids are unique after the changes are applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from service.policy.errors import RegimeInvalid, RegimeNotFound
from service.policy.model import AssuranceLevel, Channel, Evidence, Operation, Role

DEFAULT_REGIME = "current-2022"

_REGIME_NAME = r"^[a-z0-9][a-z0-9-]*$"
_RULE_ID = r"^[A-Z0-9][A-Z0-9-]*$"
_SNAKE = r"^[a-z][a-z0-9_]*$"

Snake = Annotated[str, Field(pattern=_SNAKE)]
RuleId = Annotated[str, Field(pattern=_RULE_ID)]
Text = Annotated[str, Field(min_length=1)]
RevocationReason = Literal[
    "unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation",
    "certificateHold", "privilegeWithdrawn",
]  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolderMatch(_Strict):
    """A subset of holder facts; an absent key matches any holder."""

    min_age: int | None = Field(default=None, ge=0)
    adult_ward: bool | None = None
    evacuee: bool | None = None
    card_valid: bool | None = None
    sign_cert_valid: bool | None = None


class Match(_Strict):
    """Every given key must fit the request; an absent key fits anything. ``operations`` is required."""

    operations: Annotated[tuple[Operation, ...], Field(min_length=1)]
    channels: Annotated[tuple[Channel, ...], Field(min_length=1)] | None = None
    roles: Annotated[tuple[Role, ...], Field(min_length=1)] | None = None
    same_municipality: bool | None = None
    evidence_all: tuple[Evidence, ...] = ()
    evidence_any: Annotated[tuple[Evidence, ...], Field(min_length=1)] | None = None
    post_office_delegated: bool | None = None
    venues: Annotated[tuple[Snake, ...], Field(min_length=1)] | None = None
    holder: HolderMatch | None = None
    revocation_reasons: Annotated[tuple[RevocationReason, ...], Field(min_length=1)] | None = None
    infrastructure: bool | None = None
    holder_bound: bool | None = None


class Rule(_Strict):
    id: RuleId
    title: Text
    match: Match
    decision: Literal["allow", "deny"]
    assurance: AssuranceLevel | None = None
    conditions: tuple[Snake, ...] = ()
    reason: Text
    basis: Text

    @property
    def allows(self) -> bool:
        return self.decision == "allow"

    @model_validator(mode="after")
    def _assurance_only_when_allowed(self) -> Rule:
        if self.decision == "allow" and self.assurance is None:
            raise ValueError(f"rule {self.id}: an allowing rule needs 'assurance'")
        if self.decision == "deny" and self.assurance is not None:
            raise ValueError(f"rule {self.id}: a denying rule must not name an 'assurance'")
        if self.decision == "deny" and self.conditions:
            raise ValueError(f"rule {self.id}: a denying rule has no 'conditions'")
        return self


class ReplaceChange(_Strict):
    replace: RuleId
    rule: Rule
    because: Text

    @property
    def kind(self) -> str:
        return "replace"

    @property
    def target(self) -> str:
        return self.replace


class InsertBeforeChange(_Strict):
    insert_before: RuleId
    rule: Rule
    because: Text

    @property
    def kind(self) -> str:
        return "insert_before"

    @property
    def target(self) -> str:
        return self.insert_before


class RemoveChange(_Strict):
    remove: RuleId
    because: Text

    @property
    def kind(self) -> str:
        return "remove"

    @property
    def target(self) -> str:
        return self.remove


_CHANGE_KINDS = ("replace", "insert_before", "remove")


def _change_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in _CHANGE_KINDS if key in value), None)
    kind = getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


Change = Annotated[
    Annotated[ReplaceChange, Tag("replace")]
    | Annotated[InsertBeforeChange, Tag("insert_before")]
    | Annotated[RemoveChange, Tag("remove")],
    Discriminator(_change_kind),
]


class RegimeFile(_Strict):
    name: Annotated[str, Field(pattern=_REGIME_NAME)]
    description: Text
    rules: Annotated[tuple[Rule, ...], Field(min_length=1)] | None = None
    base: Annotated[str, Field(pattern=_REGIME_NAME)] | None = None
    changes: Annotated[tuple[Change, ...], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _full_or_based(self) -> RegimeFile:
        if (self.rules is None) == (self.base is None):
            raise ValueError("a regime has either 'rules' or 'base' (with 'changes'), not both or neither")
        if (self.base is None) != (self.changes is None):
            raise ValueError("'changes' go with 'base', and a 'base' needs 'changes'")
        return self


@dataclass(frozen=True)
class Regime:
    """A loaded regime: its effective, ordered rules, and for a proposal the base and the changes made to it."""

    name: str
    description: str
    base: str | None
    changes: tuple[ReplaceChange | InsertBeforeChange | RemoveChange, ...]
    rules: tuple[Rule, ...]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a repeated key (PyYAML would silently keep the last)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _directory(directory: Path | None) -> Path:
    return Path(str(resources.files("profiles") / "policy")) if directory is None else directory


def available_regimes(directory: Path | None = None) -> list[str]:
    """Names of the regime files in ``directory`` (default: the shipped profiles/policy/)."""
    return sorted(path.stem for path in _directory(directory).glob("*.yaml"))


def _read(name: str, directory: Path) -> RegimeFile:
    if not re.match(_REGIME_NAME, name):
        raise RegimeNotFound(f"{name!r} is not a regime name (lowercase letters, digits and '-')")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_regimes(directory)) or "none"
        raise RegimeNotFound(f"no regime {name!r} in {directory} (known: {known})")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
        regime = RegimeFile.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise RegimeInvalid(f"{path}: {exc}") from exc
    if regime.name != name:
        raise RegimeInvalid(f"{path}: name {regime.name!r} differs from the file name")
    return regime


def _unique(rules: list[Rule], where: str) -> tuple[Rule, ...]:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RegimeInvalid(f"{where}: duplicate rule id {rule.id!r}")
        seen.add(rule.id)
    return tuple(rules)


def _apply(
    rules: list[Rule], changes: tuple[ReplaceChange | InsertBeforeChange | RemoveChange, ...], where: str
) -> list[Rule]:
    result = list(rules)
    for number, change in enumerate(changes, start=1):
        ids = [rule.id for rule in result]
        if change.target not in ids:
            raise RegimeInvalid(
                f"{where}: change {number} ({change.kind}) names rule {change.target!r}, which does not exist"
            )
        index = ids.index(change.target)
        if isinstance(change, ReplaceChange):
            result[index] = change.rule
        elif isinstance(change, InsertBeforeChange):
            result.insert(index, change.rule)
        else:
            del result[index]
        _unique(result, f"{where}: change {number} ({change.kind} {change.target})")
    return result


def load_regime(name: str, directory: Path | None = None) -> Regime:
    """Load and validate regime ``name`` from ``directory`` (default: the shipped profiles/policy/)."""
    base_dir = _directory(directory)
    regime = _read(name, base_dir)
    if regime.rules is not None:  # a full regime (RegimeFile allows rules xor base)
        return Regime(regime.name, regime.description, None, (), _unique(list(regime.rules), name))
    if regime.base is None or regime.base == name:
        raise RegimeInvalid(f"regime {name!r} names itself as its base")
    try:
        base = _read(regime.base, base_dir)
    except RegimeNotFound as exc:
        raise RegimeInvalid(f"regime {name!r}: base {regime.base!r} does not exist ({exc})") from exc
    if base.rules is None:
        raise RegimeInvalid(f"regime {name!r}: base {regime.base!r} is itself based on {base.base!r}")
    changes = regime.changes or ()
    rules = _apply(list(_unique(list(base.rules), regime.base)), changes, name)
    return Regime(regime.name, regime.description, regime.base, changes, tuple(rules))
