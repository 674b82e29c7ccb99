"""The issuance pipeline's context read (service/db/issuance_store.py, ``issuance_context``): what a channel names
(``ContextQuery``) and everything a request is judged and prepared on, loaded in one read session
(``IssuanceContext``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from service.db.models import CertificateRecord
from service.db.registry_models import Card, Municipality, ProofingEvent, Resident
from service.db.repository import by_serial
from service.errors import (
    CardNotFound,
    CertificateNotFound,
    MunicipalityNotFound,
    ProofingEventNotFound,
    ResidentNotFound,
)


@dataclass(frozen=True)
class ContextQuery:
    """What a channel knows about its request; ``issuance_context`` loads the rest in one read."""

    resident_number: str | None = None
    resident_id: int | None = None
    event_id: str | None = None
    card_number: str | None = None
    replaces_card: str | None = None
    replaces_serial: int | None = None
    presented_der: bytes | None = None  # the certificate whose key signed the request (phones)
    presented_serial: int | None = None  # ... named by serial (CMP)
    policy_facts: bool = False  # also what the policy asks of the holder (a live signature certificate)
    auth_cap: bool = False  # also the live user-authentication certificate a new signature one must not outlive
    device_id: str | None = None  # with auth_cap: the device the new certificate is bound to (None: the card)


@dataclass(frozen=True)
class IssuanceContext:
    resident: Resident | None
    municipality: Municipality | None
    cards: list[Card]
    signature_live: bool = False  # the resident holds an issued signature certificate (with policy_facts)
    predecessors: list[CertificateRecord] = field(default_factory=list)  # the old card's issued certificates
    event: ProofingEvent | None = None
    card: Card | None = None
    old_card: Card | None = None
    predecessor: CertificateRecord | None = None
    presented: CertificateRecord | None = None
    auth_not_after: datetime | None = None  # with auth_cap: the notAfter of that live user-authentication one

    def holder(self) -> Resident:
        """The resident the request concerns (NotFound when it names none of this registry)."""
        if self.resident is None:
            raise ResidentNotFound("the request names no resident of this registry")
        return self.resident

    def proofing(self) -> ProofingEvent:
        if self.event is None:
            raise ProofingEventNotFound("the request names no proofing event")
        return self.event

    def new_card(self) -> Card:
        if self.card is None:
            raise CardNotFound("the request names no card")
        return self.card

    def card_by_id(self, card_id: int | None) -> Card | None:
        return next((c for c in self.cards if c.id == card_id), None) if card_id is not None else None


def read_context(session: Session, query: ContextQuery) -> IssuanceContext:
    """Everything the request names, in ``session``. Named objects that do not exist raise their NotFound; a
    presented certificate that is not ours is None (the channel says what that means)."""
    presented = _presented(session, query)
    card = _card(session, query.card_number)
    resident = _resident(session, query, presented, card)
    municipality = session.get(Municipality, resident.municipality_code) if resident else None
    if resident is not None and municipality is None:
        raise MunicipalityNotFound(f"no municipality with code {resident.municipality_code!r}")
    cards = _cards(session, resident)
    old_card = _card(session, query.replaces_card) if query.replaces_card else None
    predecessors = _issued(session, CertificateRecord.card_id == old_card.id) if old_card else []
    signature_live = query.policy_facts and resident is not None and _has_live_signature(session, resident)
    event = None
    if query.event_id is not None:
        event = session.get(ProofingEvent, query.event_id)
        if event is None:
            raise ProofingEventNotFound(f"no proofing event {query.event_id!r}")
    predecessor = by_serial(session, query.replaces_serial) if query.replaces_serial is not None else None
    auth_end = _auth_end(session, query, resident, card, presented) if query.auth_cap else None
    return IssuanceContext(resident, municipality, cards, signature_live, predecessors, event, card,
                           old_card, predecessor, presented, auth_end)  # fmt: skip


def _presented(session: Session, query: ContextQuery) -> CertificateRecord | None:
    if query.presented_der is not None:
        return session.exec(
            select(CertificateRecord).where(CertificateRecord.certificate_der == query.presented_der)
        ).first()
    if query.presented_serial is not None:
        try:
            return by_serial(session, query.presented_serial)
        except CertificateNotFound:
            return None
    return None


def _card(session: Session, number: str | None) -> Card | None:
    if number is None:
        return None
    card = session.exec(select(Card).where(Card.number == number)).first()
    if card is None:
        raise CardNotFound(f"no card with number {number!r}")
    return card


def _resident(
    session: Session, query: ContextQuery, presented: CertificateRecord | None, card: Card | None
) -> Resident | None:
    if query.resident_number is not None:
        found = session.exec(select(Resident).where(Resident.resident_number == query.resident_number)).first()
        if found is None:
            raise ResidentNotFound(f"no resident with number {query.resident_number!r}")
        return found
    resident_id = query.resident_id
    if resident_id is None and presented is not None:
        resident_id = presented.resident_id
        if resident_id is None and presented.card_id is not None:
            owner = session.get(Card, presented.card_id)
            resident_id = owner.resident_id if owner else None
    if resident_id is None and card is not None:
        resident_id = card.resident_id
    return session.get(Resident, resident_id) if resident_id is not None else None


def _cards(session: Session, resident: Resident | None) -> list[Card]:
    if resident is None:
        return []
    return list(session.exec(select(Card).where(Card.resident_id == resident.id).order_by(col(Card.id))))


def _issued(session: Session, where: Any) -> list[CertificateRecord]:
    query = select(CertificateRecord).where(where, CertificateRecord.status == "issued")
    return list(session.exec(query.order_by(col(CertificateRecord.id))))


def _has_live_signature(session: Session, resident: Resident) -> bool:
    query = select(CertificateRecord.id).where(
        CertificateRecord.resident_id == resident.id,
        CertificateRecord.status == "issued",
        CertificateRecord.profile == "signature",
    )
    return session.exec(query.limit(1)).first() is not None


def _auth_end(
    session: Session,
    query: ContextQuery,
    resident: Resident | None,
    card: Card | None,
    presented: CertificateRecord | None,
) -> datetime | None:
    """With ``auth_cap``: the live user-authentication certificate's end beside the named card and device, or,
    for a re-key, beside the presented certificate's own card and device."""
    if card is None and presented is not None and presented.card_id is not None:
        card = session.get(Card, presented.card_id)
    device = query.device_id if query.device_id is not None else (presented.device_id if presented else None)
    return _live_auth_end(session, resident, card, device)


def _live_auth_end(
    session: Session, resident: Resident | None, card: Card | None, device: str | None
) -> datetime | None:
    """The latest notAfter of the resident's issued user-authentication certificates on the same card (or none)
    and device (or none): the certificate a signature certificate issued beside it must not outlive."""
    if resident is None:
        return None
    query = select(CertificateRecord.not_after).where(
        CertificateRecord.resident_id == resident.id,
        CertificateRecord.status == "issued",
        CertificateRecord.profile == "user-authentication",
        CertificateRecord.card_id == card.id if card is not None else col(CertificateRecord.card_id).is_(None),
        CertificateRecord.device_id == device if device is not None else col(CertificateRecord.device_id).is_(None),
    )
    ends = list(session.exec(query))
    return max(ends).replace(tzinfo=UTC) if ends else None
