"""The database steps of the issuance pipeline (service/flows/pipeline.py): the context read, the intent
transaction and the outcome transaction, and the reconciliation of intents a crash left behind.

- ``issuance_context``: one read session loads everything a request is judged and prepared on.
- ``record_intents``: one write transaction spends the request's authorisation (a proofing event, a nonce, or
  an online proofing recorded as used), records every certificate's intent as ``pending`` and audits both. Spend
  and intent commit together or not at all, so "event spent, no certificate row" cannot happen.
- ``record_outcome``: one write transaction records what the token did (issued, withheld, failed), supersedes
  predecessors, changes cards and gives an authorisation back, all audited. Each intent must still be
  ``pending``: one that reconciliation resolved meanwhile makes the whole outcome ``IssuanceInterrupted``.
- ``reconcile_pending``: intents older than a grace period are recorded revoked (cessationOfOperation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ca.errors import SerialCollision
from ca.issuance import IssuanceIntent
from service.db.issuance_context import ContextQuery, IssuanceContext, read_context
from service.db.models import CertificateRecord
from service.db.registry_models import Card, EnrollmentNonce, ProofingEvent
from service.db.repository import Repository, mark_revoked, serial_hex
from service.db.unit import WriteTx
from service.errors import (
    CardNotFound,
    IssuanceInterrupted,
    ProofingEventUnusable,
)

_CERTIFICATES = CertificateRecord.__table__  # type: ignore[attr-defined]
WITHHELD_REASON = "cessationOfOperation"  # signed for a request that failed, never delivered
RECONCILED_REASON = "cessationOfOperation"  # a crash between intent and outcome: possibly signed, never delivered


@dataclass(frozen=True)
class Binding:
    """Service-side facts recorded with a certificate: whose it is, on which card or device, what it replaces."""

    resident_id: int | None = None
    card_id: int | None = None
    device_id: str | None = None
    replaces_serial: str | None = None
    key_origin: str = "unknown"  # device | station | unknown: where the holder key pair was generated


@dataclass(frozen=True)
class Spend:
    """What a request's authorisation consumes in the intent transaction (and what a failure gives back)."""

    event_id: str | None = None  # an unused, unexpired proofing event
    nonce: str | None = None  # a phone application's single-use nonce
    new_event: ProofingEvent | None = None  # an online proofing decided in this request, recorded as used

    @property
    def proofing_event_id(self) -> str | None:
        return self.new_event.id if self.new_event is not None else self.event_id


@dataclass(frozen=True)
class Intent:
    intent: IssuanceIntent
    binding: Binding


@dataclass(frozen=True)
class CardChange:
    number: str
    status: str | None = None  # e.g. superseded
    delivery: str | None = None  # e.g. restricted_mail


@dataclass(frozen=True)
class Outcome:
    issued: Mapping[int, bytes] = field(default_factory=dict)  # serial -> DER, delivered
    withheld: Mapping[int, bytes] = field(default_factory=dict)  # signed, but a sibling failed: revoked at once
    failed: Mapping[int, str] = field(default_factory=dict)  # not signed: why
    supersede: Sequence[int] = ()  # predecessors revoked as superseded (those still issued)
    cards: Sequence[CardChange] = ()
    give_back: Spend | None = None


@dataclass(frozen=True)
class OutcomeRecords:
    certificates: dict[int, CertificateRecord]  # serial -> its row, as recorded
    superseded: list[CertificateRecord]


class IssuanceStore(Repository):
    def issuance_context(self, query: ContextQuery) -> IssuanceContext:
        """Everything the request names, in one read session. Named objects that do not exist raise their
        NotFound; a presented certificate that is not ours is None (the channel says what that means)."""
        with self._read() as session:
            return read_context(session, query)

    def record_intents(self, spend: Spend, intents: Sequence[Intent], now: datetime) -> None:
        """The intent transaction: spend, then every intent as ``pending``. ProofingEventUnusable when the
        authorisation was spent or expired meanwhile; SerialCollision when a serial is taken (nothing is kept).
        Core statements throughout: this and the outcome transaction are the hot path of every issuance."""
        with self._write() as tx:
            intents_in(tx, spend, intents, now)

    def record_outcome(self, outcome: Outcome, now: datetime) -> OutcomeRecords:
        """The outcome transaction (see the module docstring)."""
        with self._write() as tx:
            return outcome_in(tx, outcome, now)

    def reconcile_pending(self, older_than: datetime, now: datetime) -> list[CertificateRecord]:
        """Record every ``pending`` intent created before ``older_than`` as revoked (possibly signed by a process
        that died before recording the result; never delivered). Its authorisation stays spent."""
        with self._write() as tx:
            query = (
                select(CertificateRecord)
                .where(CertificateRecord.status == "pending", col(CertificateRecord.created_at) < older_than)
                .order_by(col(CertificateRecord.id))
                .with_for_update()
            )
            found = list(tx.session.exec(query))
            for record in found:
                record.failure = "reconciled: the process that recorded this intent ended before its outcome"
                mark_revoked(tx, record, RECONCILED_REASON, now, reconciled=True, intent_at=record.created_at,
                             proofing_event=record.proofing_event_id)  # fmt: skip
        return found


def intents_in(tx: WriteTx, spend: Spend, intents: Sequence[Intent], now: datetime) -> None:
    """Spend, then every intent as ``pending``, in ``tx`` (IssuanceStore.record_intents)."""
    rows = [_pending(item, spend.proofing_event_id, now) for item in intents]
    _spend(tx, spend, now)
    savepoint = tx.connection.begin_nested()  # PostgreSQL: a failed insert must not abort the spend
    try:
        tx.connection.execute(insert(_CERTIFICATES), rows)
    except IntegrityError as exc:
        savepoint.rollback()
        raise SerialCollision(f"one of the serials {', '.join(r['serial_hex'] for r in rows)} is taken") from exc
    savepoint.commit()
    for item, row in zip(intents, rows, strict=True):
        tx.audit("certificate.intent", row["serial_hex"], profile=item.intent.profile,
                 issuer=item.intent.issuer, proofing_event=spend.proofing_event_id)  # fmt: skip


def outcome_in(tx: WriteTx, outcome: Outcome, now: datetime) -> OutcomeRecords:
    """Record an outcome in ``tx`` (IssuanceStore.record_outcome). Each update returns its row (RETURNING), so
    the records come back without another read."""
    records: dict[int, CertificateRecord] = {}
    superseded: list[CertificateRecord] = []
    connection = tx.connection
    for serial, der in outcome.issued.items():
        records[serial] = _from_pending(connection, serial, status="issued", der=der, at=None, reason=None,
                                        failure=None, changes=0)  # fmt: skip
        tx.audit("certificate.issue", serial_hex(serial))
    for serial, der in outcome.withheld.items():
        records[serial] = _from_pending(connection, serial, status="revoked", der=der, at=now,
                                        reason=WITHHELD_REASON, failure=None, changes=1)  # fmt: skip
        tx.audit("certificate.revoke", serial_hex(serial), reason=WITHHELD_REASON,
                 withheld="a certificate of the same request failed")  # fmt: skip
    for serial, reason in outcome.failed.items():
        records[serial] = _from_pending(connection, serial, status="failed", der=None, at=None, reason=None,
                                        failure=reason[:500], changes=0)  # fmt: skip
        tx.audit("certificate.fail", serial_hex(serial), reason=reason[:500])
    for serial in outcome.supersede:
        row = connection.execute(_SUPERSEDE, {"serial": serial_hex(serial), "at": now}).mappings().first()
        if row is not None:
            tx.audit("certificate.revoke", serial_hex(serial), reason="superseded")
            superseded.append(CertificateRecord.model_construct(**row))
    for change in outcome.cards:
        _change_card(tx, change)
    if outcome.give_back is not None:
        _give_back(tx, outcome.give_back)
    return OutcomeRecords(records, superseded)


def use_once(tx: WriteTx, model: type[ProofingEvent] | type[EnrollmentNonce], match: Any, now: datetime) -> bool:
    """One UPDATE that sets used_at only where it is unset and not expired: two racing callers cannot both win."""
    result = tx.connection.execute(
        update(model).where(match, col(model.used_at).is_(None), col(model.expires_at) > now).values(used_at=now)
    )
    return bool(result.rowcount == 1)


def _spend(tx: WriteTx, spend: Spend, now: datetime) -> None:
    if spend.new_event is not None:
        tx.connection.execute(insert(ProofingEvent.__table__).values(**spend.new_event.model_dump()))  # type: ignore[attr-defined]
        tx.audit("proofing.record", spend.new_event.id, operation=spend.new_event.operation,
                 channel=spend.new_event.channel, rule=spend.new_event.rule_id)  # fmt: skip
    if spend.event_id is not None:
        if not use_once(tx, ProofingEvent, col(ProofingEvent.id) == spend.event_id, now):
            raise ProofingEventUnusable(f"proofing event {spend.event_id} was used or expired meanwhile")
        tx.audit("proofing.use", spend.event_id)
    if spend.nonce is not None:
        if not use_once(tx, EnrollmentNonce, col(EnrollmentNonce.nonce) == spend.nonce, now):
            raise ProofingEventUnusable("the nonce is unknown, used or expired; ask for a new one")
        tx.audit("nonce.use", spend.nonce[:16])


def _give_back(tx: WriteTx, spend: Spend) -> None:
    """A failure after the spend gives the authorisation back: nothing of the request was delivered."""
    if spend.event_id is not None:
        tx.connection.execute(update(ProofingEvent).where(col(ProofingEvent.id) == spend.event_id).values(used_at=None))
        tx.audit("proofing.release", spend.event_id)
    if spend.nonce is not None:
        tx.connection.execute(
            update(EnrollmentNonce).where(col(EnrollmentNonce.nonce) == spend.nonce).values(used_at=None)
        )
        tx.audit("nonce.release", spend.nonce[:16])


def _pending(item: Intent, proofing_event_id: str | None, now: datetime) -> dict[str, Any]:
    intent, binding = item.intent, item.binding
    return {
        "serial_hex": serial_hex(intent.serial),
        "issuer": intent.issuer,
        "profile": intent.profile,
        "subject": intent.subject,
        "key_algorithm": intent.key_algorithm,
        "assurance_level": intent.assurance.value,
        "status": "pending",
        "not_before": intent.not_before,
        "not_after": intent.not_after,
        "validity_rule": intent.validity_rule,
        "linted": intent.linted,
        "crl_shard": intent.crl_shard or 0,  # None (the complete CRL): shard 0, the rule of an unpartitioned CA
        "status_changes": 0,
        "resident_id": binding.resident_id,
        "card_id": binding.card_id,
        "device_id": binding.device_id,
        "proofing_event_id": proofing_event_id,
        "replaces_serial": binding.replaces_serial,
        "key_origin": binding.key_origin,
        "certificate_der": None,
        "failure": None,
        "revoked_at": None,
        "revocation_reason": None,
        "created_at": now,
    }


_FROM_PENDING = (
    update(_CERTIFICATES)
    .where(_CERTIFICATES.c.serial_hex == bindparam("serial"), _CERTIFICATES.c.status == "pending")
    .values(status=bindparam("status"), certificate_der=bindparam("der"), revoked_at=bindparam("at"),
            revocation_reason=bindparam("reason"), failure=bindparam("failure"),
            status_changes=_CERTIFICATES.c.status_changes + bindparam("changes"))
    .returning(*_CERTIFICATES.c)
)  # fmt: skip
_SUPERSEDE = (  # a revocation: one more status change (service/db/crl_store.py)
    update(_CERTIFICATES)
    .where(_CERTIFICATES.c.serial_hex == bindparam("serial"), _CERTIFICATES.c.status == "issued")
    .values(status="revoked", revoked_at=bindparam("at"), revocation_reason="superseded",
            status_changes=_CERTIFICATES.c.status_changes + 1)
    .returning(*_CERTIFICATES.c)
)  # fmt: skip


def _from_pending(connection: Connection, serial: int, **values: Any) -> CertificateRecord:
    """Move one intent out of ``pending``; IssuanceInterrupted when it is no longer pending (reconciled)."""
    row = connection.execute(_FROM_PENDING, {"serial": serial_hex(serial), **values}).mappings().first()
    if row is None:
        raise IssuanceInterrupted(
            f"certificate {serial_hex(serial)} is no longer pending: reconciliation resolved the request while it "
            "was being signed; nothing was delivered"
        )
    return CertificateRecord.model_construct(**row)


def _change_card(tx: WriteTx, change: CardChange) -> None:
    values = {k: v for k, v in (("status", change.status), ("delivery", change.delivery)) if v is not None}
    changed = tx.connection.execute(update(Card).where(col(Card.number) == change.number).values(**values))
    if changed.rowcount != 1:
        raise CardNotFound(f"no card with number {change.number!r}")
    if change.status is not None:
        tx.audit(f"card.{change.status}", change.number)
    if change.delivery is not None:
        tx.audit("card.delivery", change.number, delivery=change.delivery)
