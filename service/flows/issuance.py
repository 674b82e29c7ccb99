"""Certificate issuance on a proofing event: prepare and lint first, then consume the event, then sign once.

The intent (serial, request) is recorded before the token signs, so a crash between signing and storing
leaves a ``pending`` record that can be reconciled, never an unknown certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca.holder import Holder
from ca.issuance import IssuanceIntent, IssuedCertificate, IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.registry_models import Actor, ProofingEvent, Resident
from service.db.registry_repo import RegistryRepository
from service.db.repository import IssuanceMeta
from service.errors import ProofingEventUnusable
from service.flows.revocation import revoke
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


class BoundStore:
    """The IssuanceStore the CA core sees: the repository plus this issuance's service-side facts."""

    def __init__(self, repo: RegistryRepository, meta: IssuanceMeta) -> None:
        self.repo, self.meta = repo, meta

    def reserve(self, intent: IssuanceIntent) -> None:
        self.repo.reserve(intent, self.meta)

    def complete(self, intent: IssuanceIntent, certificate_der: bytes) -> None:
        self.repo.complete(intent, certificate_der)

    def abandon(self, intent: IssuanceIntent, reason: str) -> None:
        self.repo.abandon(intent, reason)


def usable_event(
    rt: Runtime, event_id: str, resident: Resident, *, renewal: bool, operations: set[str] = ISSUING_OPERATIONS
) -> ProofingEvent:
    """The event exists, is unused, unexpired, for this resident and for an operation that issues."""
    event = rt.repo.proofing_event(event_id)
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
    return event


def holder_of(rt: Runtime, resident: Resident, card_expires: datetime | None) -> Holder:
    municipality = rt.repo.municipality(resident.municipality_code)
    return Holder(
        name=resident.name,
        address=resident.address,
        prefecture=municipality.prefecture,
        municipality=municipality.name,
        date_of_birth=resident.date_of_birth,
        sex=resident.sex,  # type: ignore[arg-type]  # stored as the ISO 5218 digit
        card_expires=card_expires.date() if card_expires else None,
    )


def issue_certificate(rt: Runtime, actor: Actor, item: IssueInput) -> IssuedCertificate:
    resident = rt.repo.resident(item.resident_number)
    event = usable_event(rt, item.proofing_event_id, resident, renewal=item.replaces_serial is not None)
    card = rt.repo.card(item.card_number) if item.card_number else None
    if card is not None and card.resident_id != resident.id:
        raise ProofingEventUnusable(f"card {card.number} belongs to another resident")
    predecessor = rt.repo.certificate(item.replaces_serial) if item.replaces_serial is not None else None
    if predecessor is not None and predecessor.resident_id not in (None, resident.id):
        raise ProofingEventUnusable(f"certificate {predecessor.serial_hex} belongs to another resident")
    card_expires = datetime.combine(card.expires_on, datetime.min.time(), UTC) if card else None
    request = IssueRequest(
        profile=item.certificate_type,
        csr=load_csr(item.csr) if item.public_key is None else None,
        holder=holder_of(rt, resident, card_expires),
        assurance=AssuranceLevel(event.assurance_level),
        predecessor_not_after=predecessor.not_after.replace(tzinfo=UTC) if predecessor else None,
        requested_key=item.public_key,
    )
    authority = rt.authority()
    prepared = authority.prepare(request)  # every check and the lint run before the event is spent
    repo = rt.repo.acting(actor.name, actor.role, event.rule_id, "allow")
    if not repo.consume_proofing(event.id, datetime.now(UTC)):
        raise ProofingEventUnusable(f"proofing event {event.id} was used or expired meanwhile")
    meta = IssuanceMeta(
        resident_id=resident.id,
        card_id=card.id if card else None,
        device_id=item.device_id,
        proofing_event_id=event.id,
        replaces_serial=predecessor.serial_hex if predecessor else None,
        key_origin=item.key_origin,
    )
    try:
        issued = authority.issue_prepared(prepared, BoundStore(repo, meta))
    except Exception:
        repo.release_proofing(event.id)
        raise
    if predecessor is not None and predecessor.status == "issued":
        revoke(rt, actor, int(predecessor.serial_hex, 16), "superseded")
    return issued
