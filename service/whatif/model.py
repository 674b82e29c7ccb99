"""The what-if model: route a renewal wave through the channels each regime allows, asking ``decide()``.

A holder due for renewal would use a channel with the probability its uptake gives (the rest go to the
counter). The model asks the regime whether that holder's application (``card_renew`` or ``cert_renew``) may be
made there, with the role and evidence the channel presents (profiles/whatif/routes.yaml); refused, the holder
goes to the counter. A card applied for at the counter is handed over there (a second visit) unless the holder
chose mail after a face-to-face application (P13); a card applied for elsewhere goes by restricted mail if a
role the routes name may mail it, and is otherwise handed over at the counter. Each path is one *leg* with a
weight (its share of the holders), the decisions on its way and the level its certificates get: the highest
level a face-to-face or remote check on the way reached. Counter staff time is the counter steps' minutes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from service.policy.engine import decide
from service.policy.model import (
    AssuranceLevel,
    Channel,
    Decision,
    Evidence,
    HolderState,
    Operation,
    PolicyRequest,
    Role,
)
from service.policy.regime import Regime
from service.whatif.errors import ScenarioInvalid
from service.whatif.result import RegimeYear, Route, SweepPoint
from service.whatif.scenario import Scenario

COUNTER = Channel.COUNTER_IN_PERSON
_HOLDER = HolderState(age=40)  # an adult renewing before expiry: card and signature certificate still valid
_HERE = "000000"  # the holder's municipality; the counter's staff belong to it, other channels name none


@dataclass(frozen=True)
class Step:
    operation: Operation
    channel: Channel
    decision: Decision


@dataclass(frozen=True)
class Leg:
    """One way a holder's renewal goes, for ``weight`` of the holders of its kind."""

    kind: str  # card | certificate
    weight: float
    steps: tuple[Step, ...]
    certificates_at: Channel  # the channel at whose pace the CA issues this leg's certificates
    level: AssuranceLevel | None  # None: refused everywhere

    @property
    def refused(self) -> bool:
        return self.level is None


class Router:
    """Decides each operation on each channel under one regime, once (``decide()`` is pure)."""

    def __init__(self, scenario: Scenario, regime: Regime, policy_oids: Mapping[AssuranceLevel, str]) -> None:
        self.scenario, self.regime, self.oids = scenario, regime, policy_oids
        self.chip = scenario.value("key_generating_chip") >= 0.5
        self.delegated = scenario.value("post_office_delegated") >= 0.5
        self.decide = cache(self._decide)

    def evidence(self, channel: Channel) -> frozenset[Evidence]:
        route = self.scenario.routes.channels[channel]
        return route.evidence | (route.key_generating_chip_adds if self.chip else frozenset())

    def _decide(self, operation: Operation, channel: Channel, extra: frozenset[Evidence] = frozenset()) -> Decision:
        route = self.scenario.routes.channels[channel]
        request = PolicyRequest(
            operation=operation,
            channel=channel,
            role=route.role,
            actor_municipality=_HERE if route.same_municipality else None,
            holder_municipality=_HERE,
            evidence=self.evidence(channel) | extra,
            holder=_HOLDER,
            post_office_delegated=self.delegated,
            holder_bound=route.role.value == "holder_app",
        )
        return decide(request, self.regime, self.oids)

    def mail(self, evidence: frozenset[Evidence]) -> Decision:
        """The decision for the first role of the delivery route the regime lets mail a card applied for with
        ``evidence`` (the last role's refusal when none may)."""
        return self.mailer(evidence)[1]

    def mailer(self, evidence: frozenset[Evidence]) -> tuple[Role, Decision]:
        """The first role of the delivery route the regime lets mail the card, with its decision."""
        delivery = self.scenario.routes.delivery
        found: tuple[Role, Decision] | None = None
        for role in delivery.roles:
            request = PolicyRequest(
                operation=Operation.CARD_DELIVERY,
                channel=delivery.channel,
                role=role,
                actor_municipality=_HERE,
                holder_municipality=_HERE,
                evidence=evidence,
                holder=_HOLDER,
            )
            found = (role, decide(request, self.regime, self.oids))
            if found[1].allowed:
                return found
        if found is None:  # RoutesFile requires at least one role
            raise ScenarioInvalid("the delivery route names no role")
        return found

    def routes(self) -> list[Route]:
        """How the regime answers every operation the model asks about, on every channel."""
        probes = [
            (op, ch) for op in (Operation.CARD_RENEW, Operation.CERT_RENEW) for ch in self.scenario.routes.channels
        ]
        probes.append((Operation.CARD_DELIVERY, COUNTER))
        out = [_route(op, ch, self.decide(op, ch)) for op, ch in probes]
        out.append(_route(Operation.CARD_DELIVERY, self.scenario.routes.delivery.channel, self.mail(self.evidence(
            Channel.ONLINE_FACE_MATCH))))  # fmt: skip
        return out


def _route(operation: Operation, channel: Channel, decision: Decision) -> Route:
    level = decision.assurance.value if decision.assurance else None
    return Route(operation.value, channel.value, decision.allowed, decision.rule_id, level, decision.reason,
                 decision.basis)  # fmt: skip


def _level(steps: tuple[Step, ...]) -> AssuranceLevel | None:
    if not all(step.decision.allowed for step in steps):
        return None
    levels = [step.decision.assurance for step in steps if step.decision.assurance is not None]
    return max(levels, key=lambda level: level.value) if levels else None


def _apply(router: Router, operation: Operation, channel: Channel) -> Step:
    """The application on ``channel``, or at the counter when the regime refuses it there."""
    decision = router.decide(operation, channel)
    if not decision.allowed and channel is not COUNTER:
        return _apply(router, operation, COUNTER)
    return Step(operation, channel, decision)


def _card_legs(router: Router, channel: Channel, weight: float) -> list[Leg]:
    applied = _apply(router, Operation.CARD_RENEW, channel)
    handover = Step(Operation.CARD_DELIVERY, COUNTER, router.decide(Operation.CARD_DELIVERY, COUNTER))
    mail_channel = router.scenario.routes.delivery.channel
    if applied.channel is COUNTER:
        after_f2f = router.evidence(COUNTER) | router.scenario.routes.delivery.at_application
        mailed = router.mail(after_f2f)
        share = router.scenario.value("mail_after_counter_application") if mailed.allowed else 0.0
        paths = [(share, Step(Operation.CARD_DELIVERY, mail_channel, mailed)), (1.0 - share, handover)]
    else:
        mailed = router.mail(router.evidence(applied.channel))
        paths = [(1.0, Step(Operation.CARD_DELIVERY, mail_channel, mailed) if mailed.allowed else handover)]
    legs = []
    for share, delivery in paths:
        if share > 0:
            steps = (applied, delivery)
            legs.append(Leg("card", weight * share, steps, delivery.channel, _level(steps)))
    return legs


def _certificate_legs(router: Router, channel: Channel, weight: float) -> list[Leg]:
    applied = _apply(router, Operation.CERT_RENEW, channel)
    return [Leg("certificate", weight, (applied,), applied.channel, _level((applied,)))]


def uptake(scenario: Scenario, total: float | None = None) -> dict[Channel, float]:
    """Each channel's share of the holders, the counter taking the rest; ``total`` rescales the non-counter
    shares to sum to it, keeping their proportions (the sensitivity sweep)."""
    shares = {channel: scenario.value(f"uptake.{channel.value}") for channel in scenario.routes.channels
              if channel is not COUNTER}  # fmt: skip
    given = sum(shares.values())
    if total is not None:
        shares = {c: (s / given * total if given else total / len(shares)) for c, s in shares.items()}
    if sum(shares.values()) > 1.0 + 1e-9:
        raise ScenarioInvalid(f"uptake shares sum to {sum(shares.values()):.2f}, more than every holder")
    return {COUNTER: max(0.0, 1.0 - sum(shares.values())), **shares}


def legs(router: Router, total: float | None = None) -> list[Leg]:
    mix = uptake(router.scenario, total)
    return [leg for channel, share in mix.items() if share > 0
            for build in (_card_legs, _certificate_legs) for leg in build(router, channel, share)]  # fmt: skip


def regime_year(router: Router, year: str, mix: list[Leg]) -> RegimeYear:
    """Scale the legs by the year's demand and add up visits, minutes, channels, levels and the CA's pace."""
    scenario = router.scenario
    demand = scenario.years[year]
    holders = {"card": demand.card_renewals, "certificate": demand.certificate_renewals}
    per_holder = scenario.value("certificates_per_card")
    visits = minutes = certificates = refused = 0.0
    by_channel: dict[str, float] = defaultdict(float)
    by_level: dict[str, float] = defaultdict(float)
    certs_at: dict[Channel, float] = defaultdict(float)
    for leg in mix:
        people = holders[leg.kind] * leg.weight
        if leg.refused:
            refused += people
            continue
        for step in leg.steps:
            by_channel[step.channel.value] += people
            if (
                scenario.routes.channels.get(step.channel)
                and scenario.routes.channels[step.channel].staffed_by_municipality
            ):
                visits += people
                minutes += people * scenario.value(f"minutes.{step.operation.value}")
        issued = people * per_holder
        certificates += issued
        by_level[leg.level.value if leg.level else "none"] += issued
        certs_at[leg.certificates_at] += issued
    hours = minutes / 60
    seconds = {c: scenario.value(f"days.{c.value}") * scenario.value(f"hours.{c.value}") * 3600 for c in certs_at}
    peak = scenario.value("peak_factor") * sum(n / seconds[c] for c, n in certs_at.items() if seconds[c] > 0)
    return RegimeYear(
        regime=router.regime.name,
        fiscal_year=year,
        renewals=sum(holders.values()),
        counter_visits=round(visits),
        counter_staff_hours=round(hours, 2),
        working_days=round(hours / (scenario.value("counters") * scenario.value("hours_per_day")), 2),
        by_channel={channel: round(n) for channel, n in sorted(by_channel.items()) if round(n)},
        by_level={level: round(n) for level, n in sorted(by_level.items()) if round(n)},
        certificates=round(certificates),
        peak_certificates_per_second=round(peak, 4),
        refused=round(refused),
    )


def sweep(router: Router, steps: int = 10) -> list[SweepPoint]:
    """Counter hours in the scenario's sweep year as the share of holders leaving the counter goes 0 → 100 %."""
    year = router.scenario.sweep_year
    points = []
    for i in range(steps + 1):
        total = i / steps
        row = regime_year(router, year, legs(router, total))
        points.append(SweepPoint(router.regime.name, year, total, row.counter_staff_hours))
    return points
