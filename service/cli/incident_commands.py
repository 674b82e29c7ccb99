"""``koshin incident ...``: a mass suspension, revocation or release, and who can recover without a counter.

    koshin incident select roca-2017 --ca jpki-sign --issued-from 2014-10-16 --roca   (a dry run: how many)
    koshin incident suspend roca-2017 --ca jpki-sign --issued-from 2014-10-16 --roca  (certificateHold)
    koshin incident report roca-2017                                                   (recovery per regime)
    koshin incident revoke roca-2017 --reason keyCompromise                            (what is still held)
    koshin incident release roca-2017                                                  (undo the hold)

The first run of a name records its predicate; later runs of that name take it from there (service/flows/
incident.py). Progress goes to stderr; an interrupted run resumes when run again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ca.profiles import load_profiles
from service.cli.context import console, errors, operator, runtime
from service.cli.policy_commands import _policy_directory
from service.cli.whatif_commands import _whatif_directory, default_regimes
from service.db.incident_store import IncidentQuery
from service.flows.incident import Predicate, affected, check_name, incident_predicate, run_incident
from service.flows.incident_report import Holders, Recovery, recovery
from service.policy.regime import available_regimes, load_regime
from service.settings import Settings
from service.whatif.scenario import load_scenario

app = typer.Typer(no_args_is_help=True, help="A mass incident: suspend, revoke or release, and recovery per regime.")

Name = Annotated[str, typer.Argument(help="The incident's name (its predicate is recorded at the first run).")]
Ca = Annotated[str | None, typer.Option("--ca", help="Issuing CA (e.g. jpki-sign, jpki-auth).")]
Profile = Annotated[str | None, typer.Option(help="Certificate profile.")]
KeyAlgorithm = Annotated[str | None, typer.Option(help="Key algorithm as recorded (rsa2048, p256, ...).")]
KeyOrigin = Annotated[str | None, typer.Option(help="Where the key was made: device (phone) or station (card).")]
DevicePrefix = Annotated[str | None, typer.Option(help="A device batch: device ids starting with this.")]
IssuedFrom = Annotated[datetime | None, typer.Option(help="notBefore on or after (ISO date or time, UTC).")]
IssuedUntil = Annotated[datetime | None, typer.Option(help="notBefore before (ISO date or time, UTC).")]
Roca = Annotated[bool, typer.Option("--roca", help="Only RSA keys with the ROCA fingerprint (CVE-2017-15361).")]
Batch = Annotated[int, typer.Option(min=1, max=50_000, help="Certificates per transaction.")]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _predicate(ca: str | None, profile: str | None, key_algorithm: str | None, key_origin: str | None,
               device_prefix: str | None, issued_from: datetime | None, issued_until: datetime | None,
               roca: bool) -> Predicate | None:  # fmt: skip
    """The predicate the options give, or None when none is given (the incident's recorded one applies)."""
    given = (ca, profile, key_algorithm, key_origin, device_prefix, issued_from, issued_until)
    if not roca and all(v is None for v in given):
        return None
    query = IncidentQuery(ca, profile, key_algorithm, key_origin, device_prefix, _utc(issued_from), _utc(issued_until),
                          with_der=roca)  # fmt: skip
    return Predicate(query, roca)


def _run(action: str, name: str, predicate: Predicate | None, reason: str, batch: int) -> None:
    with runtime() as rt:
        chosen = incident_predicate(rt, name, predicate)
        total = sum(len(b) for b in affected(rt, chosen, action, batch))
        columns = (TextColumn(f"{action} {name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=errors, transient=False) as bar:
            task = bar.add_task(action, total=total)
            outcome = run_incident(rt, operator(rt), name, action, chosen, reason=reason, batch=batch,
                                   progress=lambda n: bar.advance(task, n))  # fmt: skip
    console.print(f"{action}: {outcome.changed:,} certificates of incident {name!r} in {outcome.seconds:.1f} s "
                  f"(rule {outcome.rule_id})")  # fmt: skip
    for crl in outcome.crls:
        shard = "complete" if crl["shard"] is None else f"shard {crl['shard']}"
        console.print(f"  CRL {crl['issuer']} {shard} #{crl['number']}: {crl['entries']:,} entries")


@app.command()
def select(name: Name, ca: Ca = None, profile: Profile = None, key_algorithm: KeyAlgorithm = None,
           key_origin: KeyOrigin = None, device_prefix: DevicePrefix = None, issued_from: IssuedFrom = None,
           issued_until: IssuedUntil = None, roca: Roca = False) -> None:  # fmt: skip
    """A dry run: how many live certificates the predicate names, and of how many holders. Changes nothing."""
    check_name(name)
    predicate = _predicate(ca, profile, key_algorithm, key_origin, device_prefix, issued_from, issued_until, roca)
    with runtime() as rt:
        chosen = predicate if predicate is not None else incident_predicate(rt, name, None)
        found = [c for batch in affected(rt, chosen, "revoke") for c in batch]
    holders = Holders.of(found)
    console.print(f"incident {name!r}: {len(found):,} certificates issued or on hold; {holders.cards:,} cards, "
                  f"{holders.phones:,} phones")  # fmt: skip


@app.command()
def suspend(name: Name, ca: Ca = None, profile: Profile = None, key_algorithm: KeyAlgorithm = None,
            key_origin: KeyOrigin = None, device_prefix: DevicePrefix = None, issued_from: IssuedFrom = None,
            issued_until: IssuedUntil = None, roca: Roca = False, batch: Batch = 5000) -> None:  # fmt: skip
    """Put every issued certificate of the incident on hold (certificateHold: a release undoes it)."""
    predicate = _predicate(ca, profile, key_algorithm, key_origin, device_prefix, issued_from, issued_until, roca)
    _run("suspend", name, predicate, "certificateHold", batch)


@app.command()
def revoke(name: Name, reason: Annotated[str, typer.Option(help="RFC 5280 reason.")] = "keyCompromise",
           batch: Batch = 5000) -> None:  # fmt: skip
    """Revoke every certificate of the incident still issued or on hold (for good)."""
    _run("revoke", name, None, reason, batch)


@app.command()
def release(name: Name, batch: Batch = 5000) -> None:
    """Release every certificate of the incident still on hold: issued again, off the CRLs."""
    _run("release", name, None, "certificateHold", batch)


@app.command()
def report(
    name: Name,
    scenario: Annotated[str, typer.Option(help="What-if scenario whose counter takes the visits.")] = "miyazaki",
    next_generation: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the affected cards whose chip can make keys.")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per regime: how many holders can re-key remotely, how many must visit a counter, and that counter load."""
    settings = Settings()
    with runtime() as rt:
        chosen = incident_predicate(rt, name, None)
        holders = Holders.of(c for batch in affected(rt, chosen, "revoke") for c in batch)
    counter = load_scenario(scenario, _whatif_directory())
    oids = load_profiles(settings.profiles_dir).hierarchy.assurance_policies
    directory = _policy_directory(settings)
    regimes = [load_regime(n, directory) for n in default_regimes(available_regimes(directory))]
    found = [recovery(holders, r, oids, counter, next_generation, on_hold=h) for h in (False, True) for r in regimes]
    if as_json:
        print(json.dumps([vars(r) for r in found], ensure_ascii=False, indent=1))
        return
    console.print(_table(name, found))


def _table(name: str, found: list[Recovery]) -> Table:
    table = Table(title=f"Recovery from incident {name!r}: remote re-key or a counter visit")
    for column in ("regime", "asked", "phones remote", "cards remote", "must visit", "counter staff-hours",
                   "working days", "rules (phone / card / key-generating card)"):  # fmt: skip
        table.add_column(column)
    for r in found:
        rules = f"{r.phone_rule} / {r.card_rule} / {r.next_generation_rule}"
        table.add_row(r.regime, "on hold" if r.on_hold else "before hold", f"{r.phones_remote:,}/{r.phones:,}",
                      f"{r.cards_remote:,}/{r.cards:,}", f"{r.counter_holders:,}", f"{r.counter_staff_hours:,.1f}",
                      f"{r.working_days:,.1f}", rules)  # fmt: skip
    return table
