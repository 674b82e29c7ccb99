"""CRL publication: numbered, signed on the token and stored outside every request; ``GET /crl/{ca}.crl`` only
serves the newest stored CRL.

``CrlPublication.publish`` holds the issuer's publication lock (service/db/crl_store.py) while it reads the
revocations, takes the next number, signs and stores, so numbers strictly increase in publication order across
workers and nodes, and it does nothing when the newest CRL already lists every revocation and is fresh.

Who calls it:

- ``BackgroundPublisher`` in every service process. A committed revocation marks its issuer; the publisher
  waits ``coalesce_seconds`` (and at least ``COST_FACTOR`` times as long as the previous CRL of that issuer
  took, so a wave of revocations over a growing list cannot keep the CPU busy) and publishes once for all the
  revocations it gathered. Every ``check_seconds`` it also checks every CA: a CRL missing, behind the
  revocations (the process that revoked died before publishing) or past half its validity is published. At
  start-up it does that check at once.
- ``ImmediatePublisher`` for operator commands (``koshin ca revoke``): publishes before the command returns.

The bound, as README states it: a revocation answers ``revoked`` over OCSP as soon as it commits; it is in the
served CRL within ``coalesce_seconds`` plus the time to build and sign the CRL while its process lives, and
within ``check_seconds`` otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509

from ca.crl_der import crl_der
from ca.signing import SigningKey
from service.db.crl_store import CrlStore

log = logging.getLogger("koshin.publication")
COST_FACTOR = 3.0


@dataclass(frozen=True)
class CrlIssuer:
    name: str
    certificate: x509.Certificate
    signing: SigningKey


@dataclass(frozen=True)
class Published:
    issuer: str
    number: int
    entries: int
    this_update: datetime
    seconds: float


@dataclass(frozen=True)
class CrlPublication:
    store: CrlStore
    issuers: dict[str, CrlIssuer]
    validity: timedelta

    @property
    def refresh_before(self) -> timedelta:
        """A CRL is re-signed once less than half its validity is left."""
        return self.validity / 2

    def due(self, name: str, now: datetime | None = None) -> bool:
        state = self.store.crl_state(name)
        now = now or datetime.now(UTC)
        fresh = state.next_update is not None and state.next_update - now > self.refresh_before
        return not (state.covers_every_revocation and fresh)

    def publish(self, name: str, *, force: bool = False) -> Published | None:
        """Publish the next CRL of ``name`` unless (without ``force``) the newest already lists every revocation
        and is fresh. Returns what it published, or None."""
        issuer = self.issuers[name]
        with self.store.publication_lock(name):
            started = time.perf_counter()
            now = datetime.now(UTC).replace(microsecond=0)
            state = self.store.crl_state(name)
            if not force and not self.due(name, now):
                return None
            entries = self.store.revoked_entries(name)
            number = state.number + 1
            this_update = max(now, state.this_update or now)  # never earlier than its predecessor's
            next_update = this_update + self.validity
            der = crl_der(issuer.certificate, issuer.signing, entries, number, this_update, next_update)
            self.store.store_crl(name, number, der, this_update, next_update, len(entries))
            return Published(name, number, len(entries), this_update, time.perf_counter() - started)

    def publish_due(self) -> list[Published]:
        """Every CA whose CRL is missing, behind its revocations or half expired."""
        return [p for name in sorted(self.issuers) if (p := self.publish(name)) is not None]


@dataclass
class ImmediatePublisher:
    """Publishes in the caller's thread (operator commands, and processes with no background publisher)."""

    publication: CrlPublication

    def revoked(self, issuers: Iterable[str]) -> None:
        for name in sorted(set(issuers)):
            self.publication.publish(name)


@dataclass
class BackgroundPublisher:
    """A daemon thread per service process that publishes coalesced CRLs (see the module docstring)."""

    publication: CrlPublication
    coalesce_seconds: float = 0.5
    check_seconds: float = 30.0
    maintenance: Callable[[], object] | None = None  # also run at every periodic check (reconciliation)
    _dirty: set[str] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _cost: dict[str, float] = field(default_factory=dict, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="koshin-crl-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; what is still marked is published before it ends."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def revoked(self, issuers: Iterable[str]) -> None:
        with self._lock:
            self._dirty.update(issuers)
        self._wake.set()

    def _run(self) -> None:
        self._guarded(self.publication.publish_due, "start-up check")
        while not self._stop.is_set():
            woken = self._wake.wait(self.check_seconds)
            if woken and not self._stop.is_set():
                self._stop.wait(self._delay())  # gather the rest of the burst
            self._wake.clear()
            with self._lock:
                dirty, self._dirty = self._dirty, set()
            if dirty:
                for name in sorted(dirty):
                    self._guarded(self._publisher_of(name), f"CRL of {name}")
            elif not woken:
                if self.maintenance is not None:
                    self._guarded(self.maintenance, "maintenance")
                self._guarded(self.publication.publish_due, "periodic check")
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for name in sorted(dirty):
            self._guarded(self._publisher_of(name), f"CRL of {name} at shutdown")

    def _delay(self) -> float:
        with self._lock:
            costs = [self._cost.get(name, 0.0) for name in self._dirty]
        return max([self.coalesce_seconds, *(COST_FACTOR * c for c in costs)])

    def _publisher_of(self, name: str) -> Callable[[], object]:
        def publish() -> None:
            published = self.publication.publish(name)
            if published is not None:
                self._cost[name] = published.seconds
                log.info("CRL %s #%d published: %d entries in %.3f s", name, published.number, published.entries,
                         published.seconds)  # fmt: skip

        return publish

    def _guarded(self, work: Callable[[], object], what: str) -> None:
        try:
            work()
        except Exception:  # the service keeps serving; the next check retries
            log.exception("CRL publication (%s) failed", what)
