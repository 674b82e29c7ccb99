"""Card issuance and renewal at a station: one proofing event, two certificates (signature and user
authentication) for keys the station generated, bound to the new card. On renewal the old card is superseded
and each of its live certificates revoked as superseded, in the pipeline's outcome transaction.

This is the channel's authoriser (a card operation's event, an active card of this resident, another card of
the same resident to replace) and its request builder; the failure rule is the pipeline's: never half a card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from ca.errors import CaError
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.issuance_context import ContextQuery
from service.db.issuance_store import Binding, CardChange, Spend
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card
from service.db.unit import Acting
from service.errors import ProofingEventUnusable, ServiceError
from service.flows.authorisation import check_card_usable, check_spender
from service.flows.issuance import card_end, check_event, holder_of
from service.flows.pipeline import Issued, IssuedCertificate, Order, Plan
from service.flows.registry import check_jurisdiction
from service.runtime import Runtime

CARD_OPERATIONS = {"card_issue", "card_renew"}
PROFILES = ("signature", "user-authentication")


@dataclass(frozen=True)
class CardIssueInput:
    resident_number: str
    proofing_event_id: str
    card_number: str
    csrs: dict[str, bytes]  # profile -> CSR (PEM or DER)
    replaces_card: str | None = None
    key_origin: str = "station"


@dataclass(frozen=True)
class CardIssueResult:
    card: Card
    issued: dict[str, IssuedCertificate]
    revoked: list[CertificateRecord]


@dataclass(frozen=True)
class _CardPlan:
    plan: Plan
    card: Card
    changes: list[CardChange]


def issue_card(rt: Runtime, actor: Actor, item: CardIssueInput) -> CardIssueResult:
    planned = _plan(rt, actor, item)
    return _result(planned, rt.pipeline().issue(planned.plan))


def issue_cards(rt: Runtime, actor: Actor, items: Sequence[CardIssueInput]) -> list[CardIssueResult | Exception]:
    """A central issuing station's batch: each item authorised as ``issue_card`` would, all of them through the
    one pipeline with the batch's writes in two transactions; each item's result or the error that failed it
    (alone)."""
    results: list[CardIssueResult | Exception | None] = [None] * len(items)
    planned: dict[int, _CardPlan] = {}
    for i, item in enumerate(items):
        try:
            planned[i] = _plan(rt, actor, item)
        except (ServiceError, CaError, ValueError) as exc:
            results[i] = exc
    order = sorted(planned)
    issued = rt.pipeline().issue_batch([planned[i].plan for i in order])
    for i, outcome in zip(order, issued, strict=True):
        results[i] = outcome if isinstance(outcome, Exception) else _result(planned[i], outcome)
    return [r if r is not None else ServiceError("not processed") for r in results]


def _result(planned: _CardPlan, issued: Issued) -> CardIssueResult:
    card = planned.card
    for change in planned.changes:
        if change.number == card.number and change.delivery:
            card.delivery = change.delivery
    return CardIssueResult(card, dict(zip(PROFILES, issued.certificates, strict=True)), issued.superseded)


def _plan(rt: Runtime, actor: Actor, item: CardIssueInput) -> _CardPlan:
    """The channel's authoriser and request builder: everything checked, nothing written."""
    query = ContextQuery(resident_number=item.resident_number, event_id=item.proofing_event_id,
                         card_number=item.card_number, replaces_card=item.replaces_card)  # fmt: skip
    ctx = rt.repo.issuance_context(query)
    resident, event, card, old_card = ctx.holder(), ctx.proofing(), ctx.new_card(), ctx.old_card
    check_jurisdiction(actor, resident.municipality_code)
    check_spender(rt, actor, event)
    check_event(event, resident, renewal=old_card is not None, operations=CARD_OPERATIONS)
    if card.resident_id != resident.id:
        raise ProofingEventUnusable(f"card {card.number} is not a card of this resident")
    check_card_usable(card)
    if set(item.csrs) != set(PROFILES):
        raise ProofingEventUnusable(f"a card needs exactly one CSR for each of {', '.join(PROFILES)}")
    if old_card is not None and (old_card.resident_id != resident.id or old_card.id == card.id):
        raise ProofingEventUnusable(f"card {old_card.number} is not another card of this resident")
    predecessors = {r.profile: r for r in ctx.predecessors}
    holder = holder_of(ctx, card_end(card))
    orders = []
    for profile in PROFILES:
        predecessor = predecessors.get(profile)
        request = IssueRequest(
            profile=profile,
            csr=load_csr(item.csrs[profile]),
            holder=holder,
            assurance=AssuranceLevel(event.assurance_level),
            predecessor_not_after=predecessor.not_after.replace(tzinfo=UTC) if predecessor else None,
        )
        binding = Binding(resident_id=resident.id, card_id=card.id, key_origin=item.key_origin,
                          replaces_serial=predecessor.serial_hex if predecessor else None)  # fmt: skip
        orders.append(Order.holder(request, binding))
    changes = []
    if "deliver_by_restricted_mail" in json.loads(event.conditions):
        changes.append(CardChange(card.number, delivery="restricted_mail"))
    if old_card is not None:
        changes.append(CardChange(old_card.number, status="superseded"))
    plan = Plan(
        Acting(actor.name, actor.role, event.rule_id, "allow"),
        Spend(event_id=event.id),
        tuple(orders),
        supersede=tuple(int(r.serial_hex, 16) for r in predecessors.values()),
        cards=tuple(changes),
        channel="card",
    )
    return _CardPlan(plan, card, changes)
