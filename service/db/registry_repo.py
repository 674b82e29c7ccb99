"""Reads and writes of the registry side: municipalities, residents, cards, actors, proofing events, audit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from service import audit as audit_chain
from service.db.audit_models import AuditRecord
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, EnrollmentNonce, Municipality, ProofingEvent, Resident
from service.db.repository import Repository
from service.errors import CardNotFound, MunicipalityNotFound, NotFound, ProofingEventNotFound, ResidentNotFound
from service.registry_rules import card_expiry

_Row = TypeVar("_Row", Municipality, Resident, Card, ProofingEvent, Actor)
TOKEN_PREFIX = "ksn_"  # noqa: S105 - a prefix, not a token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RegistryRepository(Repository):
    """The whole database API of the service (CA side inherited from ``Repository``)."""

    # -- municipalities ----------------------------------------------------------------------------------
    def upsert_municipality(self, code: str, name: str, prefecture: str, post_office_delegation: bool) -> None:
        with Session(self.engine) as session:
            row = session.get(Municipality, code) or Municipality(code=code, name=name, prefecture=prefecture)
            row.name, row.prefecture, row.post_office_delegation = name, prefecture, post_office_delegation
            session.add(row)
            self.audit(session, "municipality.upsert", code, post_office_delegation=post_office_delegation)
            session.commit()

    def municipality(self, code: str) -> Municipality:
        return self._get(Municipality, code, MunicipalityNotFound(f"no municipality with code {code!r}"))

    # -- residents ---------------------------------------------------------------------------------------
    def resident(self, number: str) -> Resident:
        with Session(self.engine) as session:
            return self._resident(session, number)

    def resident_by_id(self, resident_id: int) -> Resident:
        return self._get(Resident, resident_id, ResidentNotFound(f"no resident with id {resident_id}"))

    def create_resident(self, fields: dict[str, Any]) -> Resident:
        self.municipality(str(fields["municipality_code"]))
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            row = Resident(**fields, created_at=now, updated_at=now)
            session.add(row)
            self.audit(session, "resident.create", str(fields["resident_number"]))
            session.commit()
            session.refresh(row)
            return row

    def update_resident(self, number: str, changes: dict[str, Any]) -> tuple[Resident, dict[str, Any]]:
        """Apply ``changes``; returns the resident and the previous values of what changed."""
        if "municipality_code" in changes:
            self.municipality(str(changes["municipality_code"]))
        with Session(self.engine) as session:
            row = self._resident(session, number)
            before = {k: getattr(row, k) for k in changes}
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = datetime.now(UTC)
            session.add(row)
            self.audit(session, "resident.update", number, fields=sorted(k for k in changes if before[k] != changes[k]))
            session.commit()
            session.refresh(row)
            return row, before

    # -- cards -------------------------------------------------------------------------------------------
    def add_card(self, resident_number: str, number: str, issued_on: date) -> Card:
        with Session(self.engine) as session:
            resident = self._resident(session, resident_number)
            card = Card(
                number=number,
                resident_id=resident.id or 0,
                issued_on=issued_on,
                expires_on=card_expiry(resident.date_of_birth, issued_on),
                created_at=datetime.now(UTC),
            )
            session.add(card)
            self.audit(session, "card.issue", number, resident=resident_number, expires_on=card.expires_on)
            session.commit()
            session.refresh(card)
            return card

    def card(self, number: str) -> Card:
        with Session(self.engine) as session:
            row = session.exec(select(Card).where(Card.number == number)).first()
        if row is None:
            raise CardNotFound(f"no card with number {number!r}")
        return row

    def card_by_id(self, card_id: int) -> Card:
        return self._get(Card, card_id, CardNotFound(f"no card with id {card_id}"))

    def cards_of(self, resident_id: int) -> list[Card]:
        with Session(self.engine) as session:
            return list(session.exec(select(Card).where(Card.resident_id == resident_id).order_by(col(Card.id))))

    def set_card_status(self, number: str, status: str) -> Card:
        with Session(self.engine) as session:
            row = session.exec(select(Card).where(Card.number == number)).first()
            if row is None:
                raise CardNotFound(f"no card with number {number!r}")
            row.status = status
            session.add(row)
            self.audit(session, f"card.{status}", number)
            session.commit()
            session.refresh(row)
            return row

    def set_card_delivery(self, number: str, delivery: str) -> None:
        with Session(self.engine) as session:
            row = session.exec(select(Card).where(Card.number == number)).first()
            if row is None:
                raise CardNotFound(f"no card with number {number!r}")
            row.delivery = delivery
            session.add(row)
            self.audit(session, "card.delivery", number, delivery=delivery)
            session.commit()

    def live_certificates(self, resident_id: int, profile: str | None = None) -> list[CertificateRecord]:
        with Session(self.engine) as session:
            query = select(CertificateRecord).where(
                CertificateRecord.resident_id == resident_id, CertificateRecord.status == "issued"
            )
            if profile is not None:
                query = query.where(CertificateRecord.profile == profile)
            return list(session.exec(query.order_by(col(CertificateRecord.id))))

    # -- actors ------------------------------------------------------------------------------------------
    def add_actor(self, name: str, role: str, municipality_code: str | None) -> tuple[Actor, str]:
        """Create an actor; returns it with its API token, which is shown once and stored only hashed."""
        if municipality_code is not None:
            self.municipality(municipality_code)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as session:
            actor = Actor(
                name=name,
                role=role,
                municipality_code=municipality_code,
                token_sha256=token_digest(token),
                created_at=datetime.now(UTC),
            )
            session.add(actor)
            self.audit(session, "actor.add", name, role=role, municipality=municipality_code)
            session.commit()
            session.refresh(actor)
            return actor, token

    def actor_by_token(self, token: str) -> Actor | None:
        with Session(self.engine) as session:
            actor = session.exec(select(Actor).where(Actor.token_sha256 == token_digest(token))).first()
        return actor if actor is not None and actor.active else None

    def actor_by_id(self, actor_id: int) -> Actor:
        return self._get(Actor, actor_id, NotFound(f"no actor {actor_id}"))

    # -- proofing events ---------------------------------------------------------------------------------
    def record_proofing(self, event: ProofingEvent) -> ProofingEvent:
        with Session(self.engine) as session:
            session.add(event)
            self.audit(session, "proofing.record", event.id, operation=event.operation, channel=event.channel)
            session.commit()
            session.refresh(event)
            return event

    def record_pin_reset(self, event_id: str, credential: str) -> None:
        with Session(self.engine) as session:
            self.audit(session, "pin.reset", event_id, credential=credential)
            session.commit()

    def record_denial(self, obj: str, **details: object) -> None:
        with Session(self.engine) as session:
            self.audit(session, "policy.deny", obj, **details)
            session.commit()

    def proofing_event(self, event_id: str) -> ProofingEvent:
        return self._get(ProofingEvent, event_id, ProofingEventNotFound(f"no proofing event {event_id!r}"))

    def consume_proofing(self, event_id: str, now: datetime) -> bool:
        """Mark the event used, atomically; False when it was already used or has expired."""
        return self._use_once(ProofingEvent, col(ProofingEvent.id) == event_id, now, "proofing.use", event_id)

    def release_proofing(self, event_id: str) -> None:
        """Give an event back after an issuance failed on the token side (nothing was issued)."""
        with Session(self.engine) as session:
            session.exec(update(ProofingEvent).where(col(ProofingEvent.id) == event_id).values(used_at=None))
            self.audit(session, "proofing.release", event_id)
            session.commit()

    # -- enrollment nonces ------------------------------------------------------------------------------
    def add_nonce(self, nonce: EnrollmentNonce) -> None:
        with Session(self.engine) as session:
            session.add(nonce)
            self.audit(session, "nonce.issue", nonce.nonce[:16])
            session.commit()
            session.refresh(nonce)

    def consume_nonce(self, nonce: str, now: datetime) -> bool:
        """Mark the nonce used, atomically; False when unknown, used or expired."""
        return self._use_once(EnrollmentNonce, col(EnrollmentNonce.nonce) == nonce, now, "nonce.use", nonce[:16])

    def _use_once(
        self, model: type[ProofingEvent] | type[EnrollmentNonce], match: Any, now: datetime, action: str, obj: str
    ) -> bool:
        """One UPDATE that sets used_at only where it is unset and not expired: two racing callers cannot both
        win. The audit record is written in the same transaction when it does."""
        with Session(self.engine) as session:
            result = session.exec(
                update(model)
                .where(match, col(model.used_at).is_(None), col(model.expires_at) > now)
                .values(used_at=now)
            )
            used = bool(result.rowcount == 1)
            if used:
                self.audit(session, action, obj)
            session.commit()
            return used

    def certificate_by_der(self, der: bytes) -> CertificateRecord | None:
        with Session(self.engine) as session:
            return session.exec(select(CertificateRecord).where(CertificateRecord.certificate_der == der)).first()

    # -- audit -------------------------------------------------------------------------------------------
    def audit_records(self, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        with Session(self.engine) as session:
            query = select(AuditRecord).where(col(AuditRecord.seq) > after).order_by(col(AuditRecord.seq))
            return list(session.exec(query.limit(limit)))

    def verify_audit(self) -> audit_chain.ChainReport:
        with Session(self.engine) as session:
            return audit_chain.verify(session)

    def _get(self, model: type[_Row], key: object, missing: NotFound) -> _Row:
        """A row by primary key, or the given NotFound."""
        with Session(self.engine) as session:
            row = session.get(model, key)
        if row is None:
            raise missing
        return row

    @staticmethod
    def _resident(session: Session, number: str) -> Resident:
        row = session.exec(select(Resident).where(Resident.resident_number == number)).first()
        if row is None:
            raise ResidentNotFound(f"no resident with number {number!r}")
        return row
