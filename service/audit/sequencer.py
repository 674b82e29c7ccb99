"""The audit sequencer: one thread per serving process, one leader per database.

Every ``audit_sequencer_seconds`` (100 ms, as Trillian's sequencer) the leader places the records appended
since, in ``seq`` order and up to ``audit_sequencer_batch`` (1,000) per transaction, into the Merkle tree
(service.audit.integration), and signs a checkpoint on the token when ``audit_checkpoint_records`` records
joined the tree since the newest checkpoint or ``audit_checkpoint_seconds`` passed and the tree grew; also one
when it takes the lead and one when it stops. The delay from append to integration is observed per record
(``koshin_audit_integration_delay_seconds``).

The other processes try to take the lead every ``audit_lead_poll_seconds`` (1 s); the leader checks it still
holds it as often. A leader that dies releases the lock with its connection (PostgreSQL) or its file lock
(SQLite), so another process leads within one poll interval, resumes from the tree the database holds and
integrates what piled up: no gap (leaf indexes are dense and unique) and no fork (integration holds the tree
row's lock). Requests never wait for any of this.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.audit.anchor import AuditAnchor, audit_anchor
from service.audit.integration import integrate_batch, integrate_pending
from service.db.leadership import Leadership

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger("koshin.audit")
MAX_BATCHES_PER_TICK = 20  # then the thread looks at its lead and the checkpoint schedule again


@dataclass
class Sequencer:
    anchor: AuditAnchor
    leadership: Leadership
    interval: float = 0.1
    batch: int = 1000
    checkpoint_seconds: float = 300.0  # 0: no timer (the take-over and shutdown checkpoints still happen)
    checkpoint_records: int = 1000
    lead_poll: float = 1.0
    ticks: int = field(default=0, init=False)  # passes of the loop (tests wait on it)
    leading: bool = field(default=False, init=False)
    _since: int = field(default=0, init=False)  # records integrated since the last checkpoint this one made
    _signed_at: float = field(default=0.0, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="koshin-audit-sequencer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; the leader integrates what is pending, signs the shutdown checkpoint and resigns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.leading:
            try:
                integrate_pending(self.anchor.store, self.batch)
            except Exception:
                log.exception("audit sequencer: the last integration failed")
            self._checkpoint("shutdown")
        self.leadership.resign()
        self.leading = False

    def _run(self) -> None:
        next_look = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_look:
                next_look = now + self.lead_poll
                self._look_at_the_lead()
            if self.leading:
                self._tick()
            self.ticks += 1
            self._stop.wait(self.interval)

    def _look_at_the_lead(self) -> None:
        try:
            if self.leading and not self.leadership.leads():
                self.leading = False
                log.warning("audit sequencer: lost the lead")
            elif not self.leading and self.leadership.try_lead():
                self.leading = True
                log.info("audit sequencer: took the lead")
                self._tick()
                self._checkpoint("take-over")
        except Exception:
            log.exception("audit sequencer: cannot reach the database to lead")

    def _tick(self) -> None:
        try:
            for _ in range(MAX_BATCHES_PER_TICK):
                done = integrate_batch(self.anchor.store, self.batch)
                if done is None:
                    break
                self._since += len(done.appended_at)
                if len(done.appended_at) < self.batch:
                    break
        except Exception:  # the next tick retries; requests are not affected
            log.exception("audit sequencer: integration failed")
            return
        due = self.checkpoint_seconds > 0 and time.monotonic() - self._signed_at >= self.checkpoint_seconds
        if self._since >= self.checkpoint_records or (self._since > 0 and due):
            self._checkpoint("schedule")

    def _checkpoint(self, why: str) -> None:
        try:
            made = self.anchor.checkpoint_if_advanced()
        except Exception:  # the service keeps serving; the next attempt retries, verify shows the gap
            log.exception("audit checkpoint (%s) failed", why)
            return
        self._since, self._signed_at = 0, time.monotonic()
        if made is not None:
            log.info("audit checkpoint %d (%s): %d records, root %s", made.number, why, made.records, made.root)


def start_sequencer(rt: Runtime) -> Sequencer:
    settings = rt.settings
    sequencer = Sequencer(
        audit_anchor(rt),
        Leadership(rt.repo.engine),
        interval=settings.audit_sequencer_seconds,
        batch=settings.audit_sequencer_batch,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
        checkpoint_records=settings.audit_checkpoint_records,
        lead_poll=settings.audit_lead_poll_seconds,
    )
    sequencer.start()
    return sequencer
