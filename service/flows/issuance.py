"""Issuance on a proofing event (``POST /v1/certificates``, EST ``simpleenroll``, CMP ``ir``): the channel's
authoriser (the event is unused, unexpired, for this resident and an operation that issues) and its request
builder (one certificate, bound to the card and predecessor it names). The pipeline does the rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from pydantic import ValidationError

from ca.errors import HolderInvalid
from ca.holder import Holder
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.issuance_context import ContextQuery, IssuanceContext
from service.db.issuance_store import Binding, Spend
from service.db.registry_models import Actor, Card, ProofingEvent, Resident
from service.db.unit import Acting
from service.errors import ProofingEventUnusable, ResidentNotFound
from service.flows.authorisation import check_card_usable, check_spender, hide_foreign
from service.flows.pipeline import IssuedCertificate, Order, Plan
from service.runtime import Runtime

ISSUING_OPERATIONS = {"card_issue", "card_renew", "cert_issue", "cert_renew", "phone_cert_issue"}
RENEWING_OPERATIONS = {"card_renew", "cert_renew"}


@dataclass(frozen=True)
class IssueInput:
    csr: bytes
    resident_number: str
    certificate_type: str
    proofing_event_id: str
    card_number: str | None = None
    device_id: str | None = None
    replaces_serial: int | None = None
    key_origin: str = "unknown"
    public_key: CertificatePublicKeyTypes | None = None  # CMP: a key whose proof of possession was verified
    channel: str = "rest"  # for the metrics (service/observability/metrics.py)


def check_event(
    event: ProofingEvent, resident: Resident, *, renewal: bool, operations: set[str] = ISSUING_OPERATIONS
) -> None:
    """The event is unused, unexpired, for this resident and for an operation that issues."""
    now = datetime.now(UTC)
    if event.used_at is not None:
        raise ProofingEventUnusable(f"proofing event {event.id} was already used")
    if event.expires_at.replace(tzinfo=event.expires_at.tzinfo or UTC) <= now:
        raise ProofingEventUnusable(f"proofing event {event.id} expired at {event.expires_at:%Y-%m-%dT%H:%M:%SZ}")
    if event.resident_id != resident.id:
        raise ProofingEventUnusable(f"proofing event {event.id} is for another resident")
    if event.operation not in operations:
        raise ProofingEventUnusable(f"proofing event {event.id} ({event.operation}) does not allow this issuance")
    if renewal and event.operation not in RENEWING_OPERATIONS | {"phone_cert_issue"}:
        raise ProofingEventUnusable(f"proofing event {event.id} ({event.operation}) is not a renewal")


def card_end(card: Card | None) -> datetime | None:
    return datetime.combine(card.expires_on, datetime.min.time(), UTC) if card is not None else None


def holder_of(ctx: IssuanceContext, card_expires: datetime | None) -> Holder:
    resident, municipality = ctx.resident, ctx.municipality
    if resident is None or municipality is None:
        raise ProofingEventUnusable("the request names no resident of this registry")
    try:
        return Holder(
            name=resident.name,
            address=resident.address,
            prefecture=municipality.prefecture,
            municipality=municipality.name,
            date_of_birth=resident.date_of_birth,
            sex=resident.sex,  # type: ignore[arg-type]  # stored as the ISO 5218 digit
            card_expires=card_expires.date() if card_expires else None,
            stay_limit=resident.stay_limit,
        )
    except ValidationError as exc:  # a record stored before the repertoire rule: correct it first
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise HolderInvalid(f"the registry record of {resident.resident_number} cannot go into a certificate: "
                            f"{fields}") from None  # fmt: skip


def issue_certificate(rt: Runtime, actor: Actor, item: IssueInput) -> IssuedCertificate:
    query = ContextQuery(resident_number=item.resident_number, event_id=item.proofing_event_id,
                         card_number=item.card_number, replaces_serial=item.replaces_serial,
                         auth_cap=item.certificate_type == "signature", device_id=item.device_id)  # fmt: skip
    ctx = rt.repo.issuance_context(query)
    resident, event, card, predecessor = ctx.holder(), ctx.proofing(), ctx.card, ctx.predecessor
    hide_foreign(actor, resident.id, ResidentNotFound(f"no resident with number {item.resident_number!r}"))
    check_spender(rt, actor, event)
    check_event(event, resident, renewal=item.replaces_serial is not None)
    if card is not None and card.resident_id != resident.id:
        raise ProofingEventUnusable(f"card {card.number} belongs to another resident")
    if card is not None:
        check_card_usable(card)
    if predecessor is not None and predecessor.resident_id not in (None, resident.id):
        raise ProofingEventUnusable(f"certificate {predecessor.serial_hex} belongs to another resident")
    request = IssueRequest(
        profile=item.certificate_type,
        csr=load_csr(item.csr) if item.public_key is None else None,
        holder=holder_of(ctx, card_end(card)),
        assurance=AssuranceLevel(event.assurance_level),
        predecessor_not_after=predecessor.not_after.replace(tzinfo=UTC) if predecessor else None,
        requested_key=item.public_key,
        auth_not_after=ctx.auth_not_after,  # a signature certificate never outlives the card's live auth one
    )
    binding = Binding(
        resident_id=resident.id,
        card_id=card.id if card else None,
        device_id=item.device_id,
        replaces_serial=predecessor.serial_hex if predecessor else None,
        key_origin=item.key_origin,
    )
    supersede = (int(predecessor.serial_hex, 16),) if predecessor is not None and predecessor.status == "issued" else ()
    plan = Plan(Acting(actor.name, actor.role, event.rule_id, "allow"), Spend(event_id=event.id),
                (Order.holder(request, binding),), supersede=supersede, channel=item.channel)  # fmt: skip
    return rt.pipeline().issue(plan).only


def issue_for_operator(rt: Runtime, request: IssueRequest) -> IssuedCertificate:
    """``koshin ca issue`` and ``koshin sample``: the operator at the CA host issues for a holder record it
    supplies (no registry resident, no proofing event to spend), audited as the operator."""
    return rt.pipeline().issue(Plan(rt.repo.who, Spend(), (Order.holder(request),))).only
