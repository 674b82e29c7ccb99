"""The audit log's tree and checkpoints in the database: the position (tree, pending records, newest
checkpoint), the sequencer's integration of a batch, the store of a checkpoint (its number unique), the stored
series, and the records read back for verification and proofs.

Neither the integration nor a checkpoint row appends an audit record: both are statements about the audit log
itself, and auditing them would grow the log they describe.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select

from service.db import audit_log as audit
from service.db.audit_models import AuditCheckpoint, AuditRecord, AuditTree
from service.db.repository import Repository
from service.db.unit import raw_writing
from service.errors import CheckpointNumberTaken


@dataclass(frozen=True)
class TreeState:
    """The tree the sequencer has built: ``size`` leaves, head ``root``, right edge ``frontier`` (hex hashes,
    largest subtree first; None until computed) and the hash of the last record in it."""

    size: int
    root: str | None
    frontier: tuple[str, ...] | None
    last_hash: str | None = None


@dataclass(frozen=True)
class AuditPosition:
    tree: TreeState
    pending: int  # records appended but not yet in the tree
    oldest_pending: datetime | None  # when the oldest of them was appended
    last: AuditCheckpoint | None  # the newest checkpoint

    @property
    def records(self) -> int:
        return self.tree.size + self.pending


# (state before, hashes of the tree's leaves when the frontier must be rebuilt, hashes of the new records)
Extend = Callable[[TreeState, Sequence[str] | None, Sequence[str]], TreeState]

_RECORDS = AuditRecord.__table__  # type: ignore[attr-defined]
_TREE = AuditTree.__table__  # type: ignore[attr-defined]
_PLACE = (
    update(_RECORDS)
    .where(_RECORDS.c.seq == bindparam("record"))
    .values(leaf_index=bindparam("leaf"), integrated_at=bindparam("now"))
)


def _state(size: int, root: str | None, frontier: str | None, last_hash: str | None = None) -> TreeState:
    edge = tuple(frontier.split()) if frontier is not None else (() if size == 0 else None)
    return TreeState(size, root, edge, last_hash)


def _leaf_hashes(connection: Connection, size: int) -> list[str]:
    query = core_select(_RECORDS.c.hash).where(_RECORDS.c.leaf_index < size).order_by(_RECORDS.c.leaf_index)
    return list(connection.execute(query).scalars())


def sequencer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Integrated:
    """One integration: the records placed (with when each was appended) and the tree after it."""

    appended_at: list[datetime]
    tree: TreeState


class AuditStore(Repository):
    def audit_position(self) -> AuditPosition:
        """The tree, the pending records and the newest checkpoint (indexed reads, one session)."""
        with self._read() as session:
            tree = session.get(AuditTree, 1)
            last_hash = None
            if tree is not None and tree.size > 0:
                newest = select(AuditRecord.hash).where(AuditRecord.leaf_index == tree.size - 1)
                last_hash = session.exec(newest).first()
            pending = col(AuditRecord.leaf_index).is_(None)
            count, oldest = session.exec(select(func.count(), func.min(AuditRecord.at)).where(pending)).one()
            last = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number).desc()).limit(1)).first()
        state = _state(tree.size, tree.root, tree.frontier, last_hash) if tree is not None else _state(0, None, None)
        return AuditPosition(state, int(count), oldest, last)

    def integrate(self, limit: int, extend: Extend) -> Integrated | None:
        """Place up to ``limit`` pending records, in ``seq`` order, after the tree's last leaf, and store the tree
        ``extend`` computes: one transaction holding the tree row's lock, so two sequencers can never both
        append (the loser waits, then finds the records placed). None when nothing was pending."""
        with raw_writing(self.engine) as session:
            connection = session.connection()
            row = connection.execute(core_select(_TREE).where(_TREE.c.id == 1).with_for_update()).first()
            if row is None:
                raise OperationalError("SELECT audit_tree", {}, Exception("the audit_tree row is missing"))
            pending = connection.execute(
                core_select(_RECORDS.c.seq, _RECORDS.c.hash, _RECORDS.c.at)
                .where(_RECORDS.c.leaf_index.is_(None)).order_by(_RECORDS.c.seq).limit(limit)
            ).all()  # fmt: skip
            if not pending:
                return None
            state = _state(row.size, row.root, row.frontier)
            existing = _leaf_hashes(connection, state.size) if state.frontier is None else None
            after = extend(state, existing, [p.hash for p in pending])
            now = datetime.now(UTC)
            places = [{"record": p.seq, "leaf": state.size + i, "now": now} for i, p in enumerate(pending)]
            connection.execute(_PLACE, places)
            connection.execute(
                update(_TREE).where(_TREE.c.id == 1).values(
                    size=after.size, root=after.root, frontier=" ".join(after.frontier or ()),
                    sequencer=sequencer_name(), updated_at=now,
                )
            )  # fmt: skip
            session.commit()
        return Integrated([p.at for p in pending], after)

    def tree_sequencer(self) -> tuple[str | None, datetime | None]:
        """Which process integrated last, and when."""
        with self._read() as session:
            tree = session.get(AuditTree, 1)
        return (tree.sequencer, tree.updated_at) if tree is not None else (None, None)

    def store_checkpoint(self, row: AuditCheckpoint) -> None:
        try:
            with raw_writing(self.engine) as session:  # no audit entry (see the module docstring)
                session.add(row)
                session.commit()
        except (IntegrityError, OperationalError) as exc:
            raise CheckpointNumberTaken(f"checkpoint {row.number} is already stored") from exc

    def checkpoints(self, after: int = 0) -> list[AuditCheckpoint]:
        with self._read() as session:
            query = select(AuditCheckpoint).where(col(AuditCheckpoint.number) > after)
            return list(session.exec(query.order_by(col(AuditCheckpoint.number))))

    def verify_log(
        self, wanted: Collection[int] = (), found: dict[int, str] | None = None, every: list[str] | None = None
    ) -> audit.LogReport:
        """Check the records (service.db.audit_log.verify); the hashes at the positions in ``wanted`` go to
        ``found``, every integrated record's hash in tree order to ``every``."""
        with self._read() as session:
            return audit.verify(session, wanted, found, every)

    def record_hashes(self, upto: int) -> list[str]:
        """The hashes of the tree's first ``upto`` leaves, in order: the leaves a checkpoint's head covers."""
        query = (select(AuditRecord.hash).where(col(AuditRecord.leaf_index) < upto)
                 .order_by(col(AuditRecord.leaf_index)))  # fmt: skip
        with self._read() as session:
            return list(session.exec(query))

    def record_place(self, seq: int) -> tuple[int | None, str] | None:
        """Record ``seq``'s leaf index (None while pending) and hash; None if there is no such record."""
        with self._read() as session:
            record = session.get(AuditRecord, seq)
        return None if record is None else (record.leaf_index, record.hash)

    def integration_delays(self, since: datetime) -> list[float]:
        """Seconds from append to integration of every record appended since ``since`` and integrated, in the
        order they were appended (bench)."""
        query = (
            select(AuditRecord.at, AuditRecord.integrated_at)
            .where(col(AuditRecord.at) >= since, col(AuditRecord.integrated_at).is_not(None))
            .order_by(col(AuditRecord.seq))
        )
        with self._read() as session:
            return [(_aware(b) - _aware(a)).total_seconds() for a, b in session.exec(query) if b is not None]


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
