"""Transaction state: a transactionID is claimed once, a senderNonce used once (replays are refused). The rows
live in service/db (CmpStore); this maps a refused replay to its CMP failInfo."""

from __future__ import annotations

from service.db.cmp_models import CmpTransaction
from service.db.registry_repo import RegistryRepository
from service.errors import ReplayRefused
from service.protocols.cmp.errors import CmpRejected


def _rejected(exc: ReplayRefused) -> CmpRejected:
    return CmpRejected("transactionIdInUse" if exc.what == "transaction" else "badSenderNonce", str(exc))


def claim(repo: RegistryRepository, transaction_id: bytes, nonce: bytes, profile: str, kind: str, sender: str) -> None:
    """Start a transaction with its request's senderNonce; an ID in use or a nonce seen before is refused."""
    try:
        repo.claim_cmp(transaction_id.hex(), nonce.hex(), profile=profile, kind=kind, sender=sender)
    except ReplayRefused as exc:
        raise _rejected(exc) from None


def use_nonce(repo: RegistryRepository, nonce: bytes, transaction_id: bytes) -> None:
    try:
        repo.use_cmp_nonce(nonce.hex(), transaction_id.hex())
    except ReplayRefused as exc:
        raise _rejected(exc) from None


def find(repo: RegistryRepository, transaction_id: bytes) -> CmpTransaction | None:
    return repo.cmp_transaction(transaction_id.hex())


def finish(
    repo: RegistryRepository,
    transaction_id: bytes,
    state: str,
    serial_hex: str | None = None,
    answer_nonce: bytes | None = None,
) -> None:
    repo.finish_cmp(transaction_id.hex(), state, serial_hex, answer_nonce.hex() if answer_nonce else None)
