"""Units of work: one session per transaction, and every write transaction carries its audit records.

``reading(engine)`` is a read-only session. ``writing(engine, who)`` is one write transaction: the caller
makes its changes and queues audit entries with ``tx.audit(...)``; on leaving the block the entries are
appended to the audit log (one INSERT, no lock: service.db.audit_log) and the transaction commits. An exception
rolls everything back, audit records included. Objects stay readable after the commit (``expire_on_commit=False``).

SQLite write transactions begin with ``BEGIN IMMEDIATE``: the write lock is taken up front, so two writers
queue on the busy timeout instead of one failing with "database is locked" when it upgrades a read snapshot
that another writer has since moved past (WAL's SQLITE_BUSY_SNAPSHOT, which no timeout retries).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlmodel import Session

from service.db.audit_log import AuditEntry, append_all
from service.observability.metrics import DB_SECONDS, timed

WRITE_OPTION = "koshin_write"
SQLITE_BUSY_SECONDS = 30.0  # a writer waits this long for the write lock (several workers, a CRL being stored)


@dataclass(frozen=True)
class Acting:
    """Who a write is made for: every audit record it appends names this actor, role and policy rule."""

    actor: str = "system"
    role: str = "system"
    rule_id: str | None = None
    decision: str | None = None


@dataclass
class WriteTx:
    """The open write transaction: its session and the audit entries queued for its commit."""

    session: Session
    who: Acting
    entries: list[AuditEntry] = field(default_factory=list)

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for Core statements (no ORM unit of work on the hot paths)."""
        return self.session.connection()

    def audit(self, action: str, obj: str, **details: object) -> None:
        who = self.who
        self.entries.append(AuditEntry(who.actor, who.role, action, obj, who.rule_id, who.decision, dict(details)))


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def writing(engine: Engine, who: Acting) -> Iterator[WriteTx]:
    """One write transaction; the queued audit entries are appended and everything commits on exit."""
    with timed(DB_SECONDS, kind="write"), _gate(engine), Session(_writer(engine), expire_on_commit=False) as session:
        tx = WriteTx(session, who)
        yield tx
        append_all(session, tx.entries)
        session.commit()


@contextmanager
def raw_writing(engine: Engine) -> Iterator[Session]:
    """A write transaction that appends no audit record, for the audit log's own bookkeeping only (the
    sequencer's integration, a checkpoint row: service.db.audit_store). The caller commits."""
    with timed(DB_SECONDS, kind="write"), _gate(engine), Session(_writer(engine), expire_on_commit=False) as session:
        yield session


class _WriteGate:
    """Writers of one SQLite file queue here, across threads (a lock) and processes (``flock`` on a file beside
    the database), before they BEGIN IMMEDIATE. SQLite's own busy handler polls with growing sleeps (1, 2, 5, 10,
    ... ms), so two busy workers spend most of their time asleep; a blocked ``flock`` wakes as soon as the holder
    lets go. The lock file is opened once per process (a forked child must not share its parent's lock)."""

    def __init__(self, path: str) -> None:
        self.path, self.pid, self.fd = path, -1, -1
        self.local = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.local:
            if self.pid != os.getpid():
                self.fd, self.pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


_GATES: weakref.WeakKeyDictionary[Engine, _WriteGate | None] = weakref.WeakKeyDictionary()


@contextmanager
def _gate(engine: Engine) -> Iterator[None]:
    if engine not in _GATES:
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        _GATES[engine] = _WriteGate(f"{database}.write-lock") if database and database != ":memory:" else None
    gate = _GATES[engine]
    if gate is None:
        yield
        return
    with gate.held():
        yield


_WRITERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _writer(engine: Engine) -> Engine:
    """The engine with the write option set (SQLite: BEGIN IMMEDIATE), made once per engine."""
    found = _WRITERS.get(engine)
    if found is None:
        found = _WRITERS[engine] = engine.execution_options(**{WRITE_OPTION: True})
    return found


def configure_sqlite(engine: Engine) -> None:
    """Let koshin emit BEGIN itself (deferred for reads, IMMEDIATE for writes): pysqlite's own transaction
    handling begins lazily at the first write, which is what makes snapshot upgrades fail under WAL."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit at the driver; BEGIN comes from _begin
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
