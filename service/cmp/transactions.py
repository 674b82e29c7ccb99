"""Transaction state: a transactionID is claimed once, a senderNonce used once (replays are refused)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.cmp.errors import CmpRejected
from service.db.cmp_models import CmpNonce, CmpTransaction
from service.runtime import Runtime


def use_nonce(rt: Runtime, nonce: bytes) -> None:
    """Record a request's senderNonce; a nonce seen before is a replay (badSenderNonce)."""
    try:
        with Session(rt.repo.engine) as session:
            session.add(CmpNonce(nonce=nonce.hex(), created_at=datetime.now(UTC)))
            session.commit()
    except IntegrityError:
        raise CmpRejected("badSenderNonce", "this senderNonce was used before (replayed message)") from None


def claim(rt: Runtime, transaction_id: bytes, profile: str, kind: str, sender: str) -> CmpTransaction:
    """Start a transaction; an ID in use (an ongoing or finished transaction, or a replay) is refused."""
    now = datetime.now(UTC)
    row = CmpTransaction(transaction_id=transaction_id.hex(), profile=profile, kind=kind, state="open",
                         sender=sender, created_at=now, updated_at=now)  # fmt: skip
    try:
        with Session(rt.repo.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
    except IntegrityError:
        raise CmpRejected("transactionIdInUse", "this transactionID belongs to another transaction") from None
    return row


def find(rt: Runtime, transaction_id: bytes) -> CmpTransaction | None:
    with Session(rt.repo.engine) as session:
        return session.get(CmpTransaction, transaction_id.hex())


def finish(
    rt: Runtime, transaction_id: bytes, state: str, serial_hex: str | None = None, answer_nonce: bytes | None = None
) -> None:
    with Session(rt.repo.engine) as session:
        row = session.get(CmpTransaction, transaction_id.hex())
        if row is None:
            return
        row.state, row.updated_at = state, datetime.now(UTC)
        if serial_hex is not None:
            row.serial_hex = serial_hex
        if answer_nonce is not None:
            row.answer_nonce = answer_nonce.hex()
        session.add(row)
        session.commit()
