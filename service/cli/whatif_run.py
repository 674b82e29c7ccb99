"""``koshin whatif --run N``: N holders of the scenario's mix, driven through the live service per regime.

The model's legs (service/whatif/model.py) say which share of the holders takes which way under a regime; the
run gives N holders of the sweep year those same ways, in the same proportions (largest remainder), and sends
every step through the service's own flows under that regime, as the wave harness does (bench/wave.py): the
application's proofing event (policy decision, audited) by the actor of its channel, the delivery's decision,
and the certificates through the one pipeline (a card's two certificates in batches of ``BATCH`` from the
central station, a certificate renewal's one by one, each on a proofing event of its own). Each holder has a
live card and certificates first (made before the clock starts). A live decision that differs from the
model's is an error (``RunDisagrees``): the run is the model's check as much as the CA's measurement.

Simplified where it does not cost the CA (README, "koshin whatif"): a pool of ``KEY_POOL`` station key pairs
is reused for the CSRs (the key generation and the chip injection happen at the station, not at the CA).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devices.station import csr_on
from hsm import KeyAlgorithm
from service.cli.device_commands import embedded_home, make, stored_device
from service.db.registry_models import Actor
from service.errors import PolicyDenied
from service.flows.card_issuance import CardIssueInput, issue_cards
from service.flows.issuance import IssueInput, issue_certificate
from service.flows.proofing import ProofingInput, record_proofing
from service.policy.model import Evidence, Operation
from service.provisioning import provision
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from service.whatif.errors import RunDisagrees
from service.whatif.model import COUNTER, Leg, Router, Step, legs
from service.whatif.result import Measured, WhatIf
from service.whatif.scenario import Scenario

MUNICIPALITY = ("452017", "宮崎市", "宮崎県")  # the holders' municipality (any registry municipality would do)
STATION = "whatif-station"
KEY_POOL = 8
BATCH = 50
PROFILES = ("signature", "user-authentication")
_FIRST = frozenset({Evidence.PHOTO_ID_DOCUMENT, Evidence.RESIDENT_REGISTER_MATCH})


@dataclass
class _Holder:
    number: str
    card: str
    serials: dict[str, int] = field(default_factory=dict)  # profile -> live certificate's serial
    app: Actor | None = None  # the holder's own app, bound to the holder, when one of its steps needs it


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder: the parts sum to ``total``)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: parts[i] - exact[i])[: total - sum(parts)]:
        parts[i] += 1
    return parts


def measure(result: WhatIf, scenario: Scenario, holders: int, console: Console) -> list[Measured]:
    """Each regime of ``result``: ``holders`` holders of its sweep year's mix through the live service."""
    settings, _, _ = embedded_home()
    if not (settings.home / "secrets" / "devices" / f"{STATION}.json").exists():
        with redirect_stdout(sys.stderr):  # what it says is progress; stdout carries the result (--json)
            make(kind="station", name=STATION)
    rt = open_runtime(settings)
    try:
        provision(rt)  # at init, never inside a request: the run is an operator's command
        rt.repo.upsert_municipality(*MUNICIPALITY, scenario.value("post_office_delegated") >= 0.5)
        csrs = _station_csrs()
    finally:
        rt.close()
    return [_measure_regime(settings, scenario, regime, result.sweep_year, holders, csrs, console)
            for regime in result.regimes]  # fmt: skip


def _station_csrs() -> list[bytes]:
    device, record, _ = stored_device(STATION)
    session = device.open(next(iter(device.profile.credentials)), record["transport_pins"]["operator"])
    try:
        out = []
        for k in range(KEY_POOL):
            label = f"whatif-{k}-{uuid.uuid4().hex[:6]}"
            session.generate_keypair(KeyAlgorithm.RSA2048, label, for_injection=True)
            out.append(csr_on(session, label, KeyAlgorithm.RSA2048).encode())
            session.delete_key(label)  # as after an injection: nothing stays on the station
        return out
    finally:
        session.close()


@contextmanager
def _regime_runtime(settings: Settings, regime: str) -> Iterator[Runtime]:
    rt = open_runtime(settings.model_copy(update={"policy": regime}))
    try:
        yield rt
    finally:
        rt.close()


class _Run:
    """One regime's run: its actors, holders and what was counted."""

    def __init__(self, rt: Runtime, scenario: Scenario, csrs: list[bytes]) -> None:
        self.rt, self.scenario, self.csrs = rt, scenario, csrs
        self.router = Router(scenario, rt.regime, rt.profiles.hierarchy.assurance_policies)
        self.tag = uuid.uuid4().hex[:8]
        self.actors: dict[str, Actor] = {}
        self.by_channel: Counter[str] = Counter()
        self.by_level: Counter[str] = Counter()
        self.requests = self.certificates = self.k = 0

    def actor(self, role: str, here: bool) -> Actor:
        key = f"{role}:{here}"
        if key not in self.actors:
            municipality = MUNICIPALITY[0] if here else None
            self.actors[key] = self.rt.repo.add_actor(f"whatif-{self.tag}-{role}", role, municipality)[0]
        return self.actors[key]

    def csr_pair(self) -> dict[str, bytes]:
        self.k += 2
        return {p: self.csrs[(self.k + i) % len(self.csrs)] for i, p in enumerate(PROFILES)}

    def first_cards(self, count: int, bar: Progress) -> list[_Holder]:
        """Residents with a live card and its two certificates, as before a renewal."""
        staff = self.actor("municipal_staff", True)
        repo = self.rt.repo.acting(staff.name, staff.role)
        task = bar.add_task("holders' current cards", total=count)
        holders: list[_Holder] = []
        for first in range(0, count, BATCH):
            group, items = [], []
            for i in range(first, min(count, first + BATCH)):
                number = f"WI{self.tag}{i:06d}".upper()
                repo.create_resident({"resident_number": number, "name": "宮崎 花子",
                                      "address": "宮崎県宮崎市橘通西一丁目1番1号", "municipality_code": MUNICIPALITY[0],
                                      "date_of_birth": date(1986, 4, 12), "sex": "2"})  # fmt: skip
                event, _ = record_proofing(self.rt, staff, ProofingInput(number, Operation.CARD_ISSUE, COUNTER, _FIRST))
                card = f"WC{uuid.uuid4().hex[:18]}".upper()
                repo.add_card(number, card, datetime.now(UTC).date())
                items.append(CardIssueInput(number, event.id, card, self.csr_pair()))
                group.append(_Holder(number, card))
            for holder, outcome in zip(group, issue_cards(self.rt, staff, items), strict=True):
                if isinstance(outcome, Exception):
                    raise outcome
                holder.serials = {p: int(c.record.serial_hex, 16) for p, c in outcome.issued.items()}
            holders.extend(group)
            bar.update(task, advance=len(group))
        return holders

    def step_actor(self, step: Step, holder: _Holder, evidence: frozenset[Evidence]) -> Actor:
        if step.operation is Operation.CARD_DELIVERY and step.channel is not COUNTER:
            role, _ = self.router.mailer(evidence)  # the role the model found may mail the card
            return self.actor(role.value, True)
        route = self.scenario.routes.channels[step.channel]
        if route.role.value == "holder_app":
            if holder.app is None:
                holder.app = self.rt.repo.add_actor(f"whatif-app-{holder.number}", "holder_app", None,
                                                    holder.number)[0]  # fmt: skip
            return holder.app
        return self.actor(route.role.value, route.same_municipality)

    def decide(self, step: Step, holder: _Holder, evidence: frozenset[Evidence]) -> str:
        """The step's proofing event through the live service; its id. The live rule must be the model's."""
        actor = self.step_actor(step, holder, evidence)
        try:
            event, decision = record_proofing(self.rt, actor, ProofingInput(holder.number, step.operation,
                                                                           step.channel, evidence))  # fmt: skip
        except PolicyDenied as exc:
            raise RunDisagrees(f"{self.rt.regime.name}: the service refused {step.operation} on {step.channel} "
                               f"({exc.rule_id}) where the model found {step.decision.rule_id}") from None  # fmt: skip
        if decision.rule_id != step.decision.rule_id:
            raise RunDisagrees(f"{self.rt.regime.name}: {step.operation} on {step.channel} was decided by "
                               f"{decision.rule_id}, the model by {step.decision.rule_id}")  # fmt: skip
        self.requests += 1
        self.by_channel[step.channel.value] += 1
        return event.id

    def evidence(self, leg: Leg, step: Step) -> frozenset[Evidence]:
        """What the step presents, as the model asked it (a delivery after a counter application adds P13's)."""
        if step.operation is Operation.CARD_DELIVERY and step.channel is not COUNTER:
            applied = leg.steps[0].channel
            extra = self.scenario.routes.delivery.at_application if applied is COUNTER else frozenset()
            return self.router.evidence(applied) | extra
        return self.router.evidence(step.channel)

    def renew_cards(self, leg: Leg, group: list[_Holder]) -> None:
        """A batch of card renewals: each application's and delivery's decisions, then the central station's
        batch of new cards (the old card superseded, its certificates revoked)."""
        station = self.actor("ca_operator", False)
        items = []
        for holder in group:
            event_id = self.decide(leg.steps[0], holder, self.evidence(leg, leg.steps[0]))
            card = f"WN{uuid.uuid4().hex[:18]}".upper()
            self.rt.repo.acting(station.name, station.role).add_card(holder.number, card, datetime.now(UTC).date())
            items.append(CardIssueInput(holder.number, event_id, card, self.csr_pair(), replaces_card=holder.card))
            holder.card = card
        for outcome in issue_cards(self.rt, station, items):
            if isinstance(outcome, Exception):
                raise outcome
        for holder in group:
            for step in leg.steps[1:]:
                self.decide(step, holder, self.evidence(leg, step))
        self.counted(leg, 2 * len(group))

    def renew_certificates(self, leg: Leg, holder: _Holder) -> None:
        """A certificate renewal: per certificate a proofing event and the renewal that spends it."""
        step = leg.steps[0]
        evidence = self.evidence(leg, step)
        origin = "device" if Evidence.DEVICE_GENERATED_KEY in evidence else "station"
        actor = self.step_actor(step, holder, evidence)
        for profile, csr in self.csr_pair().items():
            event_id = self.decide(step, holder, evidence)
            issued = issue_certificate(self.rt, actor, IssueInput(
                csr, holder.number, profile, event_id, card_number=holder.card,
                replaces_serial=holder.serials[profile], key_origin=origin))  # fmt: skip
            holder.serials[profile] = int(issued.record.serial_hex, 16)
        self.counted(leg, 2)

    def counted(self, leg: Leg, certificates: int) -> None:
        self.certificates += certificates
        self.by_level[leg.level.value if leg.level else "none"] += certificates


def _measure_regime(settings: Settings, scenario: Scenario, regime: str, year: str, holders: int,
                    csrs: list[bytes], console: Console) -> Measured:  # fmt: skip
    with _regime_runtime(settings, regime) as rt:
        run = _Run(rt, scenario, csrs)
        mix = [leg for leg in legs(run.router) if not leg.refused]
        demand = scenario.years[year]
        kinds = {"card": demand.card_renewals, "certificate": demand.certificate_renewals}
        counts = allocate(holders, [kinds[leg.kind] * leg.weight for leg in mix])
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            people = iter(run.first_cards(sum(counts), bar))
            work = [(leg, [next(people) for _ in range(n)]) for leg, n in zip(mix, counts, strict=True) if n]
            task = bar.add_task(f"{regime}: renewals through the service", total=sum(counts))
            start = time.perf_counter()
            for leg, group in work:
                for first in range(0, len(group), BATCH):
                    batch = group[first : first + BATCH]
                    if leg.kind == "card":
                        run.renew_cards(leg, batch)
                    else:
                        for holder in batch:
                            run.renew_certificates(leg, holder)
                    bar.update(task, advance=len(batch))
            seconds = time.perf_counter() - start
    return Measured(regime=regime, requests=run.requests, certificates=run.certificates, seconds=round(seconds, 3),
                    certificates_per_second=round(run.certificates / seconds, 2) if seconds > 0 else 0.0,
                    by_channel=dict(sorted(run.by_channel.items())), holders=sum(counts),
                    by_level=dict(sorted(run.by_level.items())), fiscal_year=year)  # fmt: skip
