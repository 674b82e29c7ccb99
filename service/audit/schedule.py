"""When the running service makes checkpoints: never on the request path. A daemon thread per process signs one
at start-up, whenever ``audit_checkpoint_records`` records have been appended since the newest checkpoint, when
``audit_checkpoint_seconds`` have passed and the chain has grown, and once more at shutdown. Each is made only if
the head moved, so several workers do not pile up duplicates. Between polls the thread reads two rows by primary
key; issuance itself only pays for the moment a checkpoint row is inserted (one token signature, outside any
request's transaction).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.audit.anchor import AuditAnchor, audit_anchor

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger("koshin.audit")
MAX_POLL_SECONDS = 10.0


@dataclass
class Checkpointer:
    anchor: AuditAnchor
    every_seconds: float  # 0: no timer (start-up and shutdown checkpoints still happen)
    every_records: int
    poll_seconds: float = MAX_POLL_SECONDS
    polls: int = field(default=0, init=False)  # how many times the thread looked at the chain (tests wait on it)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="koshin-audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and make the shutdown checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._make("shutdown")

    def _run(self) -> None:
        self._make("start-up")
        if self.every_seconds <= 0:
            return
        last = time.monotonic()
        poll = min(self.every_seconds, self.poll_seconds)
        while not self._stop.wait(poll):
            self.polls += 1
            try:
                pending = self.anchor.pending()
            except Exception:
                log.exception("audit checkpoint: cannot read the chain head")
                continue
            due = time.monotonic() - last >= self.every_seconds
            if pending >= self.every_records or (pending > 0 and due):
                self._make("schedule")
                last = time.monotonic()

    def _make(self, why: str) -> None:
        try:
            made = self.anchor.checkpoint_if_advanced()
        except Exception:  # the service keeps serving; the next attempt retries, verify shows the gap
            log.exception("audit checkpoint (%s) failed", why)
            return
        if made is not None:
            log.info("audit checkpoint %d (%s): %d records, head %s", made.number, why, made.records, made.head_hash)


def start_checkpointer(rt: Runtime) -> Checkpointer:
    checkpointer = Checkpointer(
        audit_anchor(rt), rt.settings.audit_checkpoint_seconds, rt.settings.audit_checkpoint_records
    )
    checkpointer.start()
    return checkpointer
