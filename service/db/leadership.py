"""Who runs the audit sequencer: one process per database, elected by the database's own lock.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of its own. It
  goes when that connection goes: a killed process's socket closes, the server ends its session, and the next
  candidate's try succeeds. Advisory locks belong to one database, so installations sharing a server do not
  contend.
- SQLite: an exclusive ``flock`` on ``<database>.sequencer-lock``, which the kernel drops with the process.
  An in-memory database has one process by definition: it always leads.

The lock decides who does the work; it is not what keeps the tree whole. Integration itself holds the tree
row's lock (service.db.audit_store.integrate), so a leader that lost its lock without knowing still cannot fork
the tree.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

LOCK_KEY = zlib.crc32(b"koshin audit sequencer")  # a 32-bit constant; the key space is the database's


@dataclass
class Leadership:
    """``try_lead()`` takes the lead if it is free; ``leads()`` says whether this process still holds it (a
    round trip on PostgreSQL); ``resign()`` lets it go."""

    engine: Engine
    _connection: Connection | None = field(default=None, init=False)
    _fd: int = field(default=-1, init=False)
    _pid: int = field(default=-1, init=False)

    def try_lead(self) -> bool:
        if self.leads():
            return True
        if self.engine.url.get_backend_name() == "postgresql":
            return self._try_advisory()
        return self._try_flock()

    def leads(self) -> bool:
        if self._pid != os.getpid():  # a forked child inherits nothing of its parent's lead
            self._connection, self._fd, self._pid = None, -1, os.getpid()
            return False
        if self.engine.url.get_backend_name() != "postgresql":
            return self._fd >= 0 or self._in_memory()
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()  # not left idle in a transaction
        except DBAPIError:
            self._drop_connection()
            return False
        return True

    def resign(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self._connection.commit()
            except DBAPIError:
                pass
            self._drop_connection()
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1

    def _in_memory(self) -> bool:
        database = self.engine.url.database
        return not database or database == ":memory:"

    def _try_advisory(self) -> bool:
        try:
            connection = self.engine.connect()
            got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar())
            connection.commit()  # the lock is the session's, not the transaction's
        except DBAPIError:
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def _try_flock(self) -> bool:
        if self._in_memory():
            return True
        fd = os.open(f"{self.engine.url.database}.sequencer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()  # never back to the pool: its session may still hold the lock
                connection.close()
            except DBAPIError:
                pass
