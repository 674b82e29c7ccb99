"""CRL storage: the newest CRL, what publication needs to decide, the lock that serialises publication per
CA, and the store of a new CRL (its number allocated in the same transaction, unique per issuer).

The publication lock is held while a CRL is numbered, signed and stored, so numbers strictly increase in
publication order across every worker and node:

- PostgreSQL: a session-level advisory lock on a connection of its own (released when that connection ends,
  including when the process dies);
- SQLite: an exclusive ``flock`` on a file beside the database (released when the process dies). SQLite's own
  write lock would do too, but it would stop every other writer while a large CRL is built and signed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from service.db.models import CertificateRecord, CrlRecord
from service.db.repository import Repository, utc
from service.errors import CrlNumberTaken

_LOCAL_LOCKS: dict[str, threading.Lock] = {}  # in-memory SQLite: one process, so a process lock is enough
_LOCAL_GUARD = threading.Lock()


@dataclass(frozen=True)
class CrlState:
    """What publication decides on: the newest stored CRL of an issuer and how many revocations exist now."""

    number: int  # 0 when none is stored
    entries: int | None  # how many it lists (None: unknown, stored before koshin counted)
    this_update: datetime | None
    next_update: datetime | None
    revoked: int  # revoked certificates of the issuer now

    @property
    def covers_every_revocation(self) -> bool:
        """Revocations are never undone (no holds), so the same count means the same set."""
        return self.entries is not None and self.entries == self.revoked


class CrlStore(Repository):
    def latest_crl(self, issuer: str) -> CrlRecord | None:
        with self._read() as session:
            query = select(CrlRecord).where(CrlRecord.issuer == issuer).order_by(col(CrlRecord.number).desc())
            return session.exec(query.limit(1)).first()

    def crl_state(self, issuer: str) -> CrlState:
        with self._read() as session:
            latest = session.exec(
                select(CrlRecord.number, CrlRecord.entries, CrlRecord.this_update, CrlRecord.next_update)
                .where(CrlRecord.issuer == issuer)
                .order_by(col(CrlRecord.number).desc())
                .limit(1)
            ).first()
            revoked = session.exec(
                select(func.count())
                .select_from(CertificateRecord)
                .where(CertificateRecord.issuer == issuer, CertificateRecord.status == "revoked")
            ).one()
        if latest is None:
            return CrlState(0, None, None, None, int(revoked))
        number, entries, this_update, next_update = latest
        return CrlState(int(number), entries, utc(this_update), utc(next_update), int(revoked))

    def crls(self, issuer: str) -> list[CrlRecord]:
        """Every stored CRL of ``issuer``, in number order."""
        with self._read() as session:
            query = select(CrlRecord).where(CrlRecord.issuer == issuer).order_by(col(CrlRecord.number))
            return list(session.exec(query))

    def store_crl(
        self, issuer: str, number: int, crl_der: bytes, this_update: datetime, next_update: datetime, entries: int
    ) -> None:
        """Store CRL ``number`` (one audited transaction); CrlNumberTaken if that number exists."""
        try:
            with self._write() as tx:
                tx.session.add(CrlRecord(issuer=issuer, number=number, this_update=this_update,
                                         next_update=next_update, crl_der=crl_der, entries=entries))  # fmt: skip
                tx.session.flush()
                tx.audit("crl.publish", f"{issuer}#{number}", entries=entries, this_update=this_update)
        except IntegrityError as exc:
            raise CrlNumberTaken(f"CRL {number} of {issuer} is already stored") from exc

    @contextmanager
    def publication_lock(self, issuer: str) -> Iterator[None]:
        """Exclusive, across processes and nodes, while one CRL of ``issuer`` is numbered, signed and stored."""
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"koshin crl {issuer}".encode()).digest()[:8], "big", signed=True)
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
            return
        database = make_url(str(url)).database
        if not database or database == ":memory:":
            with _LOCAL_GUARD:
                lock = _LOCAL_LOCKS.setdefault(f"{id(self.engine)}:{issuer}", threading.Lock())
            with lock:
                yield
            return
        path = Path(f"{database}.crl-{issuer}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
