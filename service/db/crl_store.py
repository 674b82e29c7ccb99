"""CRL storage: the newest CRL of each scope (an issuer's complete CRL, or one shard of a partitioned issuer),
what publication needs to decide, the revoked entries streamed, the locks that serialise publication per scope,
and the store of a new CRL (its number allocated in the same transaction, unique per issuer and shard).

**Is a CRL up to date?** Every revocation and every release from hold adds one to ``certificate.status_changes``
in the transaction that makes the change, so the sum over a scope only grows and grows with every committed
change, in whatever order transactions commit. A CRL records the sum it covered (``crl.covers``), read before
its entries: it is up to date while the sum is still that. (Comparing counts of revoked certificates, as
before 0010, misses a release and a revocation together; comparing timestamps misses a change that took its
time early and committed late.)

**What a release from hold must set** (service/db/repository.py ``release_hold``, ``mark_released``, or a
statement of its own): ``status = 'issued'``, ``revoked_at = NULL``, ``revocation_reason = NULL`` and
``status_changes = status_changes + 1``, in the transaction that audits it; then hand the issuer to the CRL
publisher after the commit (``Publisher.revoked({issuer})``), as after a revocation. A hold is a revocation:
``status = 'revoked'``, ``revocation_reason = 'certificateHold'``, ``revoked_at``, ``status_changes + 1``
(``mark_revoked``). A status change without the ``+ 1`` is invisible to CRL publication until the CRL is
half expired.

The publication lock of a scope is held while a CRL of it is numbered, signed and stored, so numbers strictly
increase in publication order across every worker and node:

- PostgreSQL: a session-level advisory lock on a connection of its own (released when that connection ends,
  including when the process dies);
- SQLite: an exclusive ``flock`` on a file beside the database (released when the process dies). SQLite's own
  write lock would do too, but it would stop every other writer while a large CRL is built and signed.

``publication_locks`` takes several scopes' locks in one order (the complete CRL first, then the shards
ascending), so publishing every scope at once cannot deadlock with publishing one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Result, func, make_url, text, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType
from sqlmodel import col, select

from ca.crl import REASONS, RevokedEntry
from service.db.models import STATUS_CHANGED, CertificateRecord, CrlRecord
from service.db.repository import Repository, utc
from service.errors import CrlNumberTaken

_LOCAL_LOCKS: dict[str, threading.Lock] = {}  # in-memory SQLite: one process, so a process lock is enough
_LOCAL_GUARD = threading.Lock()
_CERTIFICATES = CertificateRecord.__table__  # type: ignore[attr-defined]
_CRLS = CrlRecord.__table__  # type: ignore[attr-defined]
_STREAM_ROWS = 10_000
_TIME_CACHE = (
    4096  # parsed revocation times kept while streaming  # rows fetched at a time while a CRL's entries are streamed
)
Scope = int | None  # a shard, or None: the complete CRL


@dataclass(frozen=True)
class CrlState:
    """What publication decides on: the newest stored CRL of a scope and the scope's status changes now."""

    number: int  # 0 when none is stored
    entries: int | None  # how many it lists (None: unknown, stored before koshin counted)
    this_update: datetime | None
    next_update: datetime | None
    covers: int | None  # the sum of status changes it covered (None: stored before 0010)
    changes: int  # the sum of status changes of the scope's certificates now

    @property
    def covers_every_revocation(self) -> bool:
        """Nothing was revoked or released since the newest CRL read its entries."""
        return self.covers is not None and self.covers == self.changes


def _scope_filter(shard: Scope) -> list[ColumnElement[bool]]:
    return [] if shard is None else [_CERTIFICATES.c.crl_shard == shard]


class CrlStore(Repository):
    def latest_crl(self, issuer: str, shard: Scope = None) -> CrlRecord | None:
        """The newest stored CRL of ``issuer``'s complete CRL (``shard`` None) or of one shard."""
        with self._read() as session:
            query = (
                select(CrlRecord)
                .where(CrlRecord.issuer == issuer, col(CrlRecord.shard).is_(None) if shard is None
                       else CrlRecord.shard == shard)
                .order_by(col(CrlRecord.number).desc())
            )  # fmt: skip
            return session.exec(query.limit(1)).first()

    def crls(self, issuer: str, shard: Scope = None) -> list[CrlRecord]:
        """Every stored CRL of a scope of ``issuer``, in number order."""
        with self._read() as session:
            scope = col(CrlRecord.shard).is_(None) if shard is None else CrlRecord.shard == shard
            query = select(CrlRecord).where(CrlRecord.issuer == issuer, scope).order_by(col(CrlRecord.number))
            return list(session.exec(query))

    def status_changes(self, issuer: str) -> dict[int, int]:
        """The sum of status changes per shard of ``issuer`` (shards with none are left out): one read of the
        partial CRL index."""
        query = (
            core_select(_CERTIFICATES.c.crl_shard, func.sum(_CERTIFICATES.c.status_changes))
            .where(_CERTIFICATES.c.issuer == issuer, STATUS_CHANGED)
            .group_by(_CERTIFICATES.c.crl_shard)
        )
        with self.engine.connect() as connection:
            return {int(shard): int(total) for shard, total in connection.execute(query)}

    def crl_state(self, issuer: str, shard: Scope = None) -> CrlState:
        return self.crl_states(issuer, [shard])[shard]

    def crl_states(self, issuer: str, scopes: Sequence[Scope]) -> dict[Scope, CrlState]:
        """The state of each of ``scopes``: the status changes read first, then the newest CRLs."""
        changes = self.status_changes(issuer)
        states: dict[Scope, CrlState] = {}
        with self.engine.connect() as connection:
            for shard in scopes:
                now = sum(changes.values()) if shard is None else changes.get(shard, 0)
                scope = _CRLS.c.shard.is_(None) if shard is None else _CRLS.c.shard == shard
                latest = connection.execute(
                    core_select(_CRLS.c.number, _CRLS.c.entries, _CRLS.c.this_update, _CRLS.c.next_update,
                                _CRLS.c.covers)
                    .where(_CRLS.c.issuer == issuer, scope)
                    .order_by(_CRLS.c.number.desc())
                    .limit(1)
                ).first()  # fmt: skip
                if latest is None:
                    states[shard] = CrlState(0, None, None, None, None, now)
                    continue
                number, entries, this_update, next_update, covers = latest
                states[shard] = CrlState(int(number), entries, utc(this_update), utc(next_update), covers, now)
        return states

    @contextmanager
    def revoked_stream(self, issuer: str, shard: Scope = None) -> Iterator[Iterator[tuple[int, RevokedEntry]]]:
        """The revoked certificates of a scope as (shard, entry), fetched ``_STREAM_ROWS`` at a time (a server-side
        cursor on PostgreSQL): no ORM object and no list of a million rows. Read the state first
        (``crl_states``): what the CRL covers is then at most what it lists."""
        # the time untyped: SQLite hands back its text, parsed once per distinct value (a bulk revocation shares
        # one) instead of twice per row by the column type
        revoked_at = type_coerce(func.coalesce(_CERTIFICATES.c.revoked_at, _CERTIFICATES.c.created_at), NullType())
        query = core_select(
            _CERTIFICATES.c.crl_shard, _CERTIFICATES.c.serial_hex, revoked_at, _CERTIFICATES.c.revocation_reason
        ).where(_CERTIFICATES.c.issuer == issuer, _CERTIFICATES.c.status == "revoked", STATUS_CHANGED,
                *_scope_filter(shard))  # fmt: skip
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=_STREAM_ROWS).execute(query)
            try:
                yield _entries(result)
            finally:
                result.close()

    def store_crl(
        self,
        issuer: str,
        number: int,
        crl_der: bytes,
        this_update: datetime,
        next_update: datetime,
        entries: int,
        *,
        shard: Scope = None,
        covers: int | None = None,
    ) -> None:
        """Store CRL ``number`` of a scope (one audited transaction); CrlNumberTaken if that number exists."""
        name = f"{issuer}#{number}" if shard is None else f"{issuer}/{shard}#{number}"
        try:
            with self._write() as tx:
                tx.session.add(CrlRecord(issuer=issuer, number=number, this_update=this_update, shard=shard,
                                         next_update=next_update, crl_der=crl_der, entries=entries,
                                         covers=covers))  # fmt: skip
                tx.session.flush()
                tx.audit("crl.publish", name, entries=entries, this_update=this_update)
        except IntegrityError as exc:
            raise CrlNumberTaken(f"CRL {name} is already stored") from exc

    @contextmanager
    def publication_lock(self, issuer: str, shard: Scope = None) -> Iterator[None]:
        """Exclusive, across processes and nodes, while one CRL of a scope is numbered, signed and stored."""
        with self.publication_locks(issuer, [shard]):
            yield

    @contextmanager
    def publication_locks(self, issuer: str, scopes: Sequence[Scope]) -> Iterator[None]:
        """The locks of every one of ``scopes``, taken in one order (complete CRL, then shards ascending)."""
        names = [issuer if s is None else f"{issuer}/{s}" for s in sorted(set(scopes), key=lambda s: -1 if s is None
                                                                           else s)]  # fmt: skip
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            with self.engine.connect() as connection, ExitStack() as stack:
                for name in names:
                    stack.enter_context(_advisory_lock(connection, name))
                yield
            return
        database = make_url(str(url)).database
        with ExitStack() as stack:
            for name in names:
                if not database or database == ":memory:":
                    with _LOCAL_GUARD:
                        lock = _LOCAL_LOCKS.setdefault(f"{id(self.engine)}:{name}", threading.Lock())
                    stack.enter_context(lock)
                else:
                    stack.enter_context(_file_lock(Path(f"{database}.crl-{name.replace('/', '-')}.lock")))
            yield


def _entries(result: Result[Any]) -> Iterator[tuple[int, RevokedEntry]]:
    reasons, unspecified = REASONS, REASONS["unspecified"]
    times: dict[object, datetime] = {}
    rows: Iterable[tuple[int, str, object, str | None]] = result  # type: ignore[assignment]
    for shard, serial, raw, reason in rows:
        when = times.get(raw)
        if when is None:
            if len(times) >= _TIME_CACHE:
                times.clear()
            when = times[raw] = utc(raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw)))
        yield shard, RevokedEntry(int(serial, 16), when, unspecified if reason is None else reasons[reason])


@contextmanager
def _advisory_lock(connection: Connection, name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock (the complete CRL keeps the key it had before shards)."""
    key = int.from_bytes(hashlib.sha256(f"koshin crl {name}".encode()).digest()[:8], "big", signed=True)
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        connection.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
