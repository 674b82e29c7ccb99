"""CRL publication: numbered, signed on the token and stored outside every request; ``GET /crl/{ca}.crl`` and
``GET /crl/{ca}/{shard}.crl`` only serve the newest stored CRL of their scope.

An issuing CA with ``crl_shards: N > 1`` (profiles/hierarchy.yaml) is partitioned (RFC 5280 section 5.2.5):
each certificate names shard ``serial mod N``; the shard's CRL lists the revoked certificates of that shard and
carries a critical issuing distribution point naming the shard's URL. Each shard is numbered on its own. The
complete CRL (every revocation of the issuer, no issuing distribution point) is published beside them, for
the certificates issued before shards and for clients that fetch it.

``CrlPublication.publish`` publishes one scope (a shard, or the complete CRL) under that scope's publication
lock (service/db/crl_store.py) while it reads the state and the revocations, takes the next number, signs and
stores, so numbers strictly increase in publication order across workers and nodes; it does nothing when the
newest CRL of the scope covers every status change and is fresh. ``publish_partitioned`` does every scope of an
issuer in one pass over its revocations: each entry is encoded once into its shard's list, the complete CRL's
list is the shards' lists joined.

Who calls it:

- ``BackgroundPublisher`` in every service process. A committed revocation (or release from hold) marks its
  issuer; the publisher waits ``coalesce_seconds`` (and at least ``COST_FACTOR`` times as long as the previous
  publication of that issuer took, so a wave of revocations over a growing list cannot keep the CPU busy) and
  publishes, in one pass, the scopes of the issuer that changed (the shards whose status changes moved, and the
  complete CRL). Every ``check_seconds`` it also checks every scope of every CA: a CRL missing, behind (the
  process that revoked died before publishing) or past half its validity is published. At start-up it does
  that check at once.
- ``ImmediatePublisher`` for operator commands (``koshin ca revoke``): publishes before the command returns.
- An incident: ``publish_partitioned(name, force=True)`` signs every scope of the issuer now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509

from ca.crl import shard_scope
from ca.crl_der import RevokedBody, signed_crl_der
from ca.extensions import CaUrls
from ca.signing import SigningKey
from service.db.crl_store import CrlState, CrlStore, Scope

log = logging.getLogger("koshin.publication")
COST_FACTOR = 3.0


@dataclass(frozen=True)
class CrlIssuer:
    name: str
    certificate: x509.Certificate
    signing: SigningKey
    shards: int = 1  # crl_shards of the hierarchy; 1: only the complete CRL
    urls: CaUrls | None = None  # where the shards are served (their issuing distribution points name it)

    def __post_init__(self) -> None:
        if self.shards > 1 and self.urls is None:
            raise ValueError(f"the shards of {self.name} need the URLs their issuing distribution point names")

    @property
    def scopes(self) -> list[Scope]:
        """Every CRL this issuer publishes: the complete CRL, then its shards."""
        return [None, *range(self.shards)] if self.shards > 1 else [None]

    def scope(self, shard: Scope) -> x509.IssuingDistributionPoint | None:
        if shard is None:
            return None
        if not 0 <= shard < self.shards or self.urls is None:
            raise ValueError(f"{self.name} has no CRL shard {shard} (it has {self.shards})")
        return shard_scope(self.urls.crl(self.name, shard))


@dataclass(frozen=True)
class Published:
    issuer: str
    number: int
    entries: int
    this_update: datetime
    seconds: float  # since the publication began (for publish_partitioned: the whole pass up to this CRL)
    shard: Scope = None


@dataclass(frozen=True)
class CrlPublication:
    store: CrlStore
    issuers: dict[str, CrlIssuer]
    validity: timedelta

    @property
    def refresh_before(self) -> timedelta:
        """A CRL is re-signed once less than half its validity is left."""
        return self.validity / 2

    def is_due(self, state: CrlState, now: datetime) -> bool:
        fresh = state.next_update is not None and state.next_update - now > self.refresh_before
        return not (state.covers_every_revocation and fresh)

    def due(self, name: str, now: datetime | None = None, shard: Scope = None) -> bool:
        return self.is_due(self.store.crl_state(name, shard), now or datetime.now(UTC))

    def publish(self, name: str, *, force: bool = False, shard: Scope = None) -> Published | None:
        """Publish the next CRL of one scope of ``name`` (``shard`` None: the complete CRL) unless (without
        ``force``) the newest covers every status change and is fresh. Returns what it published, or None."""
        issuer = self.issuers[name]
        scope = issuer.scope(shard)
        with self.store.publication_lock(name, shard):
            started = time.perf_counter()
            now = datetime.now(UTC).replace(microsecond=0)
            state = self.store.crl_state(name, shard)
            if not force and not self.is_due(state, now):
                return None
            with self.store.revoked_stream(name, shard) as rows:
                body = RevokedBody()
                for _, entry in rows:
                    body.add(entry)
            return self._sign_and_store(issuer, shard, state, [body.der], body.count, now, scope, started)

    def publish_partitioned(self, name: str, *, force: bool = False) -> list[Published]:
        """Every scope of ``name`` (each shard, then the complete CRL) that is due, or all with ``force``, from
        one streamed pass over the issuer's revocations, under every scope's lock. For an incident: a million
        revocations cost one read of the rows, about 45 bytes of DER per entry per list, and one signature per
        scope. An unpartitioned issuer publishes its complete CRL only."""
        issuer = self.issuers[name]
        with self.store.publication_locks(name, issuer.scopes):
            started = time.perf_counter()
            now = datetime.now(UTC).replace(microsecond=0)
            states = self.store.crl_states(name, issuer.scopes)
            due = [s for s in issuer.scopes if force or self.is_due(states[s], now)]
            if not due:
                return []
            bodies = {shard: RevokedBody() for shard in range(issuer.shards)}
            outside = RevokedBody()  # shards past crl_shards (a count that shrank): only the complete CRL lists them
            with self.store.revoked_stream(name) as rows:
                for shard, entry in rows:
                    bodies.get(shard, outside).add(entry)
            if issuer.shards == 1:
                bodies, outside = {}, bodies[0]
            published = []
            for shard in sorted(s for s in due if s is not None):
                body = bodies[shard]
                published.append(self._sign_and_store(issuer, shard, states[shard], [body.der], body.count, now,
                                                      issuer.scope(shard), started))  # fmt: skip
            if None in due:
                parts = [b.der for b in bodies.values() if b.count] + [outside.der]
                count = sum(b.count for b in bodies.values()) + outside.count
                published.append(self._sign_and_store(issuer, None, states[None], parts, count, now, None, started))
            return published

    def _sign_and_store(
        self,
        issuer: CrlIssuer,
        shard: Scope,
        state: CrlState,
        parts: Sequence[bytes | bytearray],
        count: int,
        now: datetime,
        scope: x509.IssuingDistributionPoint | None,
        started: float,
    ) -> Published:
        number = state.number + 1
        this_update = max(now, state.this_update or now)  # never earlier than its predecessor's
        next_update = this_update + self.validity
        der = signed_crl_der(issuer.certificate, issuer.signing, parts, number, this_update, next_update, scope=scope)
        self.store.store_crl(issuer.name, number, der, this_update, next_update, count, shard=shard,
                             covers=state.changes)  # fmt: skip
        return Published(issuer.name, number, count, this_update, time.perf_counter() - started, shard)

    def publish_issuer(self, name: str) -> list[Published]:
        """What is due of ``name``: every due scope of a partitioned issuer, else its complete CRL."""
        return self.publish_partitioned(name)

    def publish_due(self) -> list[Published]:
        """Every scope of every CA whose CRL is missing, behind its status changes or half expired."""
        return [p for name in sorted(self.issuers) for p in self.publish_issuer(name)]


@dataclass
class ImmediatePublisher:
    """Publishes in the caller's thread (operator commands, and processes with no background publisher)."""

    publication: CrlPublication

    def revoked(self, issuers: Iterable[str]) -> None:
        for name in sorted(set(issuers)):
            self.publication.publish_issuer(name)


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
        """Mark issuers whose certificates were revoked or released; which of their shards changed is read
        from the status changes when they are published."""
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
            published = self.publication.publish_issuer(name)
            if published:
                self._cost[name] = max(p.seconds for p in published)
            for p in published:
                scope = name if p.shard is None else f"{name}/{p.shard}"
                log.info("CRL %s #%d published: %d entries in %.3f s", scope, p.number, p.entries, p.seconds)

        return publish

    def _guarded(self, work: Callable[[], object], what: str) -> None:
        try:
            work()
        except Exception:  # the service keeps serving; the next check retries
            log.exception("CRL publication (%s) failed", what)
