"""``koshin policy ...``: show a regime's rule table; evaluate one request against it (a dry run, no state)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ca.profiles import AssuranceLevel, load_profiles
from service.cli.context import console, print_json
from service.policy.engine import decide
from service.policy.model import Channel, Decision, Evidence, HolderState, Operation, PolicyRequest, Role
from service.policy.regime import InsertBeforeChange, Regime, ReplaceChange, Rule, load_regime
from service.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Inspect and try the assurance-level policy regimes.")

RegimeOption = Annotated[
    str | None, typer.Option("--regime", help="Regime name (default: KOSHIN_POLICY, else current-2022).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _policy_directory(settings: Settings) -> Path | None:
    """``KOSHIN_PROFILES_DIR`` has the shipped layout, so its regimes are in ``policy/``."""
    return settings.profiles_dir / "policy" if settings.profiles_dir is not None else None


def _regime(name: str | None) -> tuple[Regime, Mapping[AssuranceLevel, str]]:
    settings = Settings()
    regime = load_regime(name or settings.policy, _policy_directory(settings))
    return regime, load_profiles(settings.profiles_dir).hierarchy.assurance_policies


def _any(values: tuple[str, ...] | None) -> str:
    return "any" if values is None else ", ".join(values)


def _rule_json(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json", exclude_none=True)


@app.command()
def show(regime_name: RegimeOption = None, as_json: JsonOption = False) -> None:
    """The regime's rules in evaluation order (the first match decides); for a proposal, its changes too."""
    regime, _ = _regime(regime_name)
    changes = [
        {
            "kind": change.kind,
            "target": change.target,
            "rule": change.rule.id if isinstance(change, ReplaceChange | InsertBeforeChange) else None,
            "because": change.because,
        }
        for change in regime.changes
    ]
    if as_json:
        print_json(
            {
                "regime": regime.name,
                "description": regime.description,
                "base": regime.base,
                "rules": [_rule_json(rule) for rule in regime.rules],
                "changes": changes,
            }
        )
        return
    based = f" (base {regime.base}, {len(changes)} changes)" if regime.base else ""
    console.print(f"regime {regime.name}{based}", markup=False)
    console.print(regime.description, markup=False)
    table = Table("#", "id", "operations", "channels", "roles", "decision", "assurance", "basis")
    for number, rule in enumerate(regime.rules, start=1):
        match = rule.match
        cells = (
            str(number),
            rule.id,
            ", ".join(match.operations),
            _any(match.channels),
            _any(match.roles),
            rule.decision,
            rule.assurance or "-",
            rule.basis,
        )
        table.add_row(*(Text(cell) for cell in cells))  # literal text: "[R3]" is a citation, not markup
    console.print(table)
    console.print("unmatched requests: deny (DEFAULT-DENY)")
    if changes:
        console.print(f"changes against {regime.base}:", markup=False)
        for change in changes:
            made = f" -> {change['rule']}" if change["rule"] else ""
            console.print(f"  {change['kind']} {change['target']}{made}: {change['because']}", markup=False)


def _decision_json(decision: Decision) -> dict[str, Any]:
    return asdict(decision)


@app.command()
def evaluate(
    operation: Annotated[Operation, typer.Option(help="What is asked for.")],
    channel: Annotated[Channel, typer.Option(help="Where and how.")],
    role: Annotated[Role, typer.Option(help="Who acts.")],
    actor_municipality: Annotated[str | None, typer.Option(help="The actor's municipality.")] = None,
    holder_municipality: Annotated[str | None, typer.Option(help="The holder's municipality of residence.")] = None,
    evidence: Annotated[list[Evidence] | None, typer.Option(help="Evidence presented; repeat the option.")] = None,
    age: Annotated[int, typer.Option(min=0, help="The holder's age.")] = 20,
    adult_ward: Annotated[bool, typer.Option("--adult-ward", help="The holder is an adult ward.")] = False,
    evacuee: Annotated[bool, typer.Option("--evacuee", help="The holder is a GEJE evacuee.")] = False,
    card_valid: Annotated[bool, typer.Option("--card-valid/--card-invalid", help="The holder's card.")] = True,
    sign_cert_valid: Annotated[
        bool, typer.Option("--sign-cert-valid/--sign-cert-invalid", help="The card's signature certificate.")
    ] = True,
    post_office_delegated: Annotated[
        bool, typer.Option("--post-office-delegated", help="The municipality delegated e-cert work to post offices.")
    ] = False,
    venue: Annotated[str | None, typer.Option(help="e.g. company_outreach, wide_area_venue.")] = None,
    regime_name: RegimeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decide one request under a regime. A dry run: nothing is recorded."""
    regime, oids = _regime(regime_name)
    request = PolicyRequest(
        operation=operation,
        channel=channel,
        role=role,
        actor_municipality=actor_municipality,
        holder_municipality=holder_municipality,
        evidence=frozenset(evidence or ()),
        holder=HolderState(
            age=age, adult_ward=adult_ward, evacuee=evacuee, card_valid=card_valid, sign_cert_valid=sign_cert_valid
        ),
        post_office_delegated=post_office_delegated,
        venue=venue,
    )
    decision = decide(request, regime, oids)
    if as_json:
        print_json(_decision_json(decision))
        return
    verdict = "allow" if decision.allowed else "deny"
    level = f" at {decision.assurance} (policy {decision.policy_oid})" if decision.assurance else ""
    console.print(f"{verdict} by rule {decision.rule_id}{level} under {decision.regime}", markup=False)
    console.print(f"  reason      {decision.reason}", markup=False)
    if decision.conditions:
        console.print(f"  conditions  {', '.join(decision.conditions)}", markup=False)
    console.print(f"  basis       {decision.basis}", markup=False)
