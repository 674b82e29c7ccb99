"""Reads and writes of the registry side: municipalities, residents, cards, actors, proofing events, audit."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ca.errors import ValidityError
from service.db import audit_log
from service.db.audit_models import AuditRecord
from service.db.audit_store import AuditStore
from service.db.auth_store import AuthStore
from service.db.cmp_store import CmpStore
from service.db.crl_store import CrlStore
from service.db.incident_store import IncidentStore
from service.db.issuance_batch import BatchIssuanceStore
from service.db.issuance_store import use_once
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, EnrollmentNonce, Municipality, ProofingEvent, Resident
from service.db.synthetic import SyntheticStore
from service.db.unit import WriteTx
from service.errors import (
    CardNotFound,
    MunicipalityNotFound,
    NotFound,
    ProofingEventNotFound,
    RegistryConflict,
    ResidentNotFound,
)
from service.flows.registry_rules import card_expiry

_Row = TypeVar("_Row", Municipality, Resident, Card, ProofingEvent, Actor)
TOKEN_PREFIX = "ksn_"  # noqa: S105 - a prefix, not a token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RegistryRepository(BatchIssuanceStore, CrlStore, CmpStore, AuditStore, AuthStore, IncidentStore,
                         SyntheticStore):  # fmt: skip
    """The whole database API of the service (CA side inherited from ``Repository``)."""

    # -- municipalities ----------------------------------------------------------------------------------
    def upsert_municipality(self, code: str, name: str, prefecture: str, post_office_delegation: bool) -> None:
        with self._write() as tx:
            row = tx.session.get(Municipality, code) or Municipality(code=code, name=name, prefecture=prefecture)
            row.name, row.prefecture, row.post_office_delegation = name, prefecture, post_office_delegation
            tx.session.add(row)
            tx.audit("municipality.upsert", code, post_office_delegation=post_office_delegation)

    def municipality(self, code: str) -> Municipality:
        return self._get(Municipality, code, MunicipalityNotFound(f"no municipality with code {code!r}"))

    # -- residents ---------------------------------------------------------------------------------------
    def resident(self, number: str) -> Resident:
        with self._read() as session:
            return self._resident(session, number)

    def resident_by_id(self, resident_id: int) -> Resident:
        return self._get(Resident, resident_id, ResidentNotFound(f"no resident with id {resident_id}"))

    def create_resident(self, fields: dict[str, Any], cards: Sequence[tuple[str, date]] = ()) -> Resident:
        """A new resident with its ``cards`` (number, issued on), in one transaction: all of it or nothing. A
        number already taken (the resident's or a card's) is a RegistryConflict."""
        self.municipality(str(fields["municipality_code"]))
        number = str(fields["resident_number"])
        now = datetime.now(UTC)
        with _unique(f"resident {number} or one of its cards is already registered"), self._write() as tx:
            if tx.session.exec(select(Resident).where(Resident.resident_number == number)).first() is not None:
                raise RegistryConflict(f"resident {number} is already registered")
            row = Resident(**fields, created_at=now, updated_at=now)
            tx.session.add(row)
            tx.session.flush()
            tx.audit("resident.create", number)
            for card_number, issued_on in cards:
                self._new_card(tx, row, card_number, issued_on)
        return row

    def update_resident(self, number: str, changes: dict[str, Any]) -> tuple[Resident, dict[str, Any]]:
        """Apply ``changes``; returns the resident and the previous values of what changed."""
        if "municipality_code" in changes:
            self.municipality(str(changes["municipality_code"]))
        with self._write() as tx:
            row = self._resident(tx.session, number)
            before = {k: getattr(row, k) for k in changes}
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = datetime.now(UTC)
            tx.session.add(row)
            tx.audit("resident.update", number, fields=sorted(k for k in changes if before[k] != changes[k]))
            if "stay_limit" in changes and before["stay_limit"] != changes["stay_limit"]:
                _follow_stay_limit(tx, row)
        return row, before

    # -- cards -------------------------------------------------------------------------------------------
    def add_card(self, resident_number: str, number: str, issued_on: date) -> Card:
        with _unique(f"card {number} is already registered"), self._write() as tx:
            return self._new_card(tx, self._resident(tx.session, resident_number), number, issued_on)

    @staticmethod
    def _new_card(tx: WriteTx, resident: Resident, number: str, issued_on: date) -> Card:
        if tx.session.exec(select(Card).where(Card.number == number)).first() is not None:
            raise RegistryConflict(f"card {number} is already registered")
        try:
            expires_on = card_expiry(resident.date_of_birth, issued_on, resident.stay_limit)
        except ValidityError as exc:  # the card conflicts with the stored record (issued before the birth)
            raise RegistryConflict(f"card {number} for {resident.resident_number}: {exc}") from None
        card = Card(number=number, resident_id=resident.id or 0, issued_on=issued_on, expires_on=expires_on,
                    created_at=datetime.now(UTC))  # fmt: skip
        tx.session.add(card)
        tx.audit("card.issue", number, resident=resident.resident_number, expires_on=card.expires_on)
        return card

    def card(self, number: str) -> Card:
        with self._read() as session:
            row = session.exec(select(Card).where(Card.number == number)).first()
        if row is None:
            raise CardNotFound(f"no card with number {number!r}")
        return row

    def card_by_id(self, card_id: int) -> Card:
        return self._get(Card, card_id, CardNotFound(f"no card with id {card_id}"))

    def cards_of(self, resident_id: int) -> list[Card]:
        with self._read() as session:
            return list(session.exec(select(Card).where(Card.resident_id == resident_id).order_by(col(Card.id))))

    def set_card_status(self, number: str, status: str) -> Card:
        with self._write() as tx:
            row = tx.session.exec(select(Card).where(Card.number == number)).first()
            if row is None:
                raise CardNotFound(f"no card with number {number!r}")
            row.status = status
            tx.session.add(row)
            tx.audit(f"card.{status}", number)
        return row

    def live_certificates(self, resident_id: int, profile: str | None = None) -> list[CertificateRecord]:
        with self._read() as session:
            query = select(CertificateRecord).where(
                CertificateRecord.resident_id == resident_id, CertificateRecord.status == "issued"
            )
            if profile is not None:
                query = query.where(CertificateRecord.profile == profile)
            return list(session.exec(query.order_by(col(CertificateRecord.id))))

    # -- actors ------------------------------------------------------------------------------------------
    def add_actor(
        self, name: str, role: str, municipality_code: str | None, resident_number: str | None = None
    ) -> tuple[Actor, str]:
        """Create an actor; returns it with its API token, which is shown once and stored only hashed. A holder
        app may be bound to the one resident it acts for (``resident_number``)."""
        if municipality_code is not None:
            self.municipality(municipality_code)
        resident_id = self.resident(resident_number).id if resident_number is not None else None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._write() as tx:
            actor = Actor(
                name=name,
                role=role,
                municipality_code=municipality_code,
                resident_id=resident_id,
                token_sha256=token_digest(token),
                created_at=datetime.now(UTC),
            )
            tx.session.add(actor)
            tx.audit("actor.add", name, role=role, municipality=municipality_code, resident=resident_number)
        return actor, token

    def system_actor(self, name: str, role: str) -> Actor:
        """The inactive actor a protocol acts as (CMP: ``cmp``/``holder_app``), made once at provisioning. Its
        token digest is of a value nobody holds, so it cannot log in."""
        with self._read() as session:
            found = session.exec(select(Actor).where(Actor.name == name, Actor.role == role)).first()
        if found is not None:
            return found
        with self._write() as tx:
            actor = Actor(name=name, role=role, token_sha256=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                          active=False, created_at=datetime.now(UTC))  # fmt: skip
            tx.session.add(actor)
            tx.audit("actor.add", name, role=role, active=False)
        return actor

    def find_actor(self, name: str, role: str) -> Actor | None:
        with self._read() as session:
            return session.exec(select(Actor).where(Actor.name == name, Actor.role == role)).first()

    def actor_by_token(self, token: str) -> Actor | None:
        with self._read() as session:
            actor = session.exec(select(Actor).where(Actor.token_sha256 == token_digest(token))).first()
        return actor if actor is not None and actor.active else None

    def actor_by_id(self, actor_id: int) -> Actor:
        return self._get(Actor, actor_id, NotFound(f"no actor {actor_id}"))

    # -- proofing events ---------------------------------------------------------------------------------
    def record_proofing(self, event: ProofingEvent) -> ProofingEvent:
        with self._write() as tx:
            tx.session.add(event)
            tx.audit("proofing.record", event.id, operation=event.operation, channel=event.channel)
        return event

    def spend_for_pin_reset(self, event_id: str, credential: str, now: datetime) -> bool:
        """Spend a PIN-reset event and record the reset it authorises, in one transaction; False when the event
        was used or has expired."""
        with self._write() as tx:
            if not use_once(tx, ProofingEvent, col(ProofingEvent.id) == event_id, now):
                return False
            tx.audit("proofing.use", event_id)
            tx.audit("pin.reset", event_id, credential=credential)
        return True

    def burn_event(self, event_id: str, why: str, now: datetime) -> bool:
        """Spend a proofing event that must not be used (its secret was exposed, too many wrong secrets), audited;
        False when it was used or expired already."""
        with self._write() as tx:
            if not use_once(tx, ProofingEvent, col(ProofingEvent.id) == event_id, now):
                return False
            tx.audit("proofing.burn", event_id, why=why)
        return True

    def record_denial(self, obj: str, **details: object) -> None:
        with self._write() as tx:
            tx.audit("policy.deny", obj, **details)

    def proofing_event(self, event_id: str) -> ProofingEvent:
        return self._get(ProofingEvent, event_id, ProofingEventNotFound(f"no proofing event {event_id!r}"))

    # -- enrollment nonces ------------------------------------------------------------------------------
    def add_nonce(self, nonce: EnrollmentNonce) -> None:
        with self._write() as tx:
            tx.session.add(nonce)
            tx.audit("nonce.issue", nonce.nonce[:16])

    # -- audit -------------------------------------------------------------------------------------------
    def audit_records(self, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        with self._read() as session:
            query = select(AuditRecord).where(col(AuditRecord.seq) > after).order_by(col(AuditRecord.seq))
            return list(session.exec(query.limit(limit)))

    def verify_audit(self) -> audit_log.LogReport:
        with self._read() as session:
            return audit_log.verify(session)

    def _get(self, model: type[_Row], key: object, missing: NotFound) -> _Row:
        """A row by primary key, or the given NotFound."""
        with self._read() as session:
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


def _follow_stay_limit(tx: WriteTx, resident: Resident) -> None:
    """A new period of stay moves the end of the resident's active cards with it (a shorter one ends them at it,
    an extension gives back what the age rule allows), each change audited. Certificates already signed keep
    their notAfter: new ones, issued on a proofing, follow the new limit."""
    cards = tx.session.exec(select(Card).where(Card.resident_id == resident.id, Card.status == "active"))
    for card in cards:
        ends = card_expiry(resident.date_of_birth, card.issued_on, resident.stay_limit)
        if ends != card.expires_on:
            card.expires_on = ends
            tx.session.add(card)
            tx.audit("card.validity", card.number, resident=resident.resident_number, expires_on=ends,
                     reason="stay_limit")  # fmt: skip


@contextmanager
def _unique(what: str) -> Iterator[None]:
    """A concurrent insert of the same number loses on the unique index: a RegistryConflict, not a 500."""
    try:
        yield
    except IntegrityError:
        raise RegistryConflict(what) from None
