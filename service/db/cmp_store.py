"""CMP protocol state (RFC 4210): a transactionID is claimed once, a senderNonce used once; each write audited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from service.db.cmp_models import CmpNonce, CmpTransaction
from service.db.repository import Repository
from service.errors import ReplayRefused


class CmpStore(Repository):
    def claim_cmp(self, transaction_id: str, nonce: str, *, profile: str, kind: str, sender: str) -> None:
        """Start a transaction and use its request's senderNonce, in one transaction. ReplayRefused("transaction")
        when the ID belongs to another (or a replayed) transaction, ReplayRefused("nonce") when the nonce was
        seen before."""
        now = datetime.now(UTC)
        try:
            with self._write() as tx:
                if tx.session.get(CmpTransaction, transaction_id) is not None:
                    raise ReplayRefused("transaction", "this transactionID belongs to another transaction")
                if tx.session.get(CmpNonce, nonce) is not None:
                    raise ReplayRefused("nonce", "this senderNonce was used before (replayed message)")
                tx.session.add(CmpTransaction(transaction_id=transaction_id, profile=profile, kind=kind,
                                              state="open", sender=sender, created_at=now, updated_at=now))  # fmt: skip
                tx.session.add(CmpNonce(nonce=nonce, created_at=now))
                tx.session.flush()
                tx.audit("cmp.claim", transaction_id, kind=kind, profile=profile, sender=sender)
        except IntegrityError as exc:  # a concurrent request claimed it between the check and the insert
            raise ReplayRefused("transaction", "this transactionID or senderNonce is in use") from exc

    def use_cmp_nonce(self, nonce: str, transaction_id: str) -> None:
        """Use the senderNonce of a message inside an existing transaction (certConf)."""
        try:
            with self._write() as tx:
                if tx.session.get(CmpNonce, nonce) is not None:
                    raise ReplayRefused("nonce", "this senderNonce was used before (replayed message)")
                tx.session.add(CmpNonce(nonce=nonce, created_at=datetime.now(UTC)))
                tx.session.flush()
                tx.audit("cmp.nonce", transaction_id)
        except IntegrityError as exc:
            raise ReplayRefused("nonce", "this senderNonce was used before (replayed message)") from exc

    def cmp_transaction(self, transaction_id: str) -> CmpTransaction | None:
        with self._read() as session:
            return session.get(CmpTransaction, transaction_id)

    def finish_cmp(
        self, transaction_id: str, state: str, serial_hex: str | None = None, answer_nonce: str | None = None
    ) -> None:
        with self._write() as tx:
            row = tx.session.get(CmpTransaction, transaction_id)
            if row is None:
                return
            row.state, row.updated_at = state, datetime.now(UTC)
            if serial_hex is not None:
                row.serial_hex = serial_hex
            if answer_nonce is not None:
                row.answer_nonce = answer_nonce
            tx.session.add(row)
            tx.audit("cmp.transaction", transaction_id, state=state, serial=serial_hex)
