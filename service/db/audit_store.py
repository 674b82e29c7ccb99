"""Audit checkpoints in the database: the chain head and the newest checkpoint, the store of a new one (its number
unique), the stored series, and the chain recomputed for verification. Checkpoint rows are the one write that
appends no audit record: a checkpoint is a signed statement about the audit chain, and auditing it would move
the head it just signed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select

from service.db import audit_chain as audit
from service.db.audit_models import AuditCheckpoint, AuditHead, AuditRecord
from service.db.repository import Repository
from service.errors import CheckpointNumberTaken


@dataclass(frozen=True)
class AuditPosition:
    head_seq: int
    head_hash: str | None
    last: AuditCheckpoint | None  # the newest checkpoint


class AuditStore(Repository):
    def audit_position(self) -> AuditPosition:
        """The committed head and the newest checkpoint (two primary-key reads, one session)."""
        with self._read() as session:
            head = session.get(AuditHead, 1)
            last = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number).desc()).limit(1)).first()
        return AuditPosition(head.seq if head else 0, head.hash if head else None, last)

    def store_checkpoint(self, row: AuditCheckpoint) -> None:
        try:
            with self._write() as tx:  # no audit entry (see the module docstring)
                tx.session.add(row)
        except (IntegrityError, OperationalError) as exc:
            raise CheckpointNumberTaken(f"checkpoint {row.number} is already stored") from exc

    def checkpoints(self, after: int = 0) -> list[AuditCheckpoint]:
        with self._read() as session:
            query = select(AuditCheckpoint).where(col(AuditCheckpoint.number) > after)
            return list(session.exec(query.order_by(col(AuditCheckpoint.number))))

    def verify_chain(
        self, wanted: Collection[int] = (), found: dict[int, str] | None = None, every: list[str] | None = None
    ) -> audit.ChainReport:
        """Recompute the chain (service.audit.verify); the hashes of the records numbered in ``wanted`` go to
        ``found``, every record's hash in order to ``every``."""
        with self._read() as session:
            return audit.verify(session, wanted, found, every)

    def record_hashes(self, upto: int) -> list[str]:
        """The hashes of records 1..``upto`` in order: the leaves a checkpoint's tree head covers."""
        query = select(AuditRecord.hash).where(col(AuditRecord.seq) <= upto).order_by(col(AuditRecord.seq))
        with self._read() as session:
            return list(session.exec(query))
