"""Failed authentication costs the attacker: every failure is counted (in the database, shared by all
workers) and audited, and a lockout follows a documented number of them.

- **Per proofing event** (EST Basic, CMP MAC): the 5th (``KOSHIN_AUTH_EVENT_LIMIT``) wrong one-time secret
  for an event burns the event
  (spent, audited ``proofing.burn``): a 130-bit secret is not guessed in 5 tries, so a fifth failure means
  someone is trying; the holder's counter visit records a new event.
- **Per source address** (bearer tokens, EST Basic, CMP MAC): 20 failures within 15 minutes
  (``KOSHIN_AUTH_SOURCE_LIMIT``, ``KOSHIN_AUTH_WINDOW_SECONDS``) lock the source
  out for the rest of that window: its requests get 429 ``authentication-locked`` with ``Retry-After`` (CMP:
  ``notAuthorized``), whatever they present. EST and CMP check the shared count before authenticating; a
  bearer request checks the worker's own record of locks (no database read on the hot path), which a worker
  learns at the source's next failure there. Behind a TLS terminator every peer is the terminator, so the
  source is unknown and only the per-event count applies (``KOSHIN_BEHIND_TLS`` / ``serve --tls``).
"""

from __future__ import annotations

import contextvars
import threading
from datetime import UTC, datetime, timedelta

from service.errors import AuthenticationLocked
from service.runtime import Runtime

# The peer address of the request being handled, set by service/api/source.py (None: unknown).
request_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("koshin_request_source", default=None)

EVENT_MEMORY = timedelta(days=1)
_guard = threading.Lock()  # over Runtime.auth_locks: source -> locked until, this worker's knowledge


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _window(rt: Runtime) -> timedelta:
    return timedelta(seconds=rt.settings.auth_window_seconds)


def _locked(rt: Runtime, source: str, until: datetime) -> AuthenticationLocked:
    seconds = max(1, int((until - _now()).total_seconds()))
    limit, window = rt.settings.auth_source_limit, rt.settings.auth_window_seconds
    message = f"{limit} failed authentications from {source} within {window} s: try again in {seconds} s"
    return AuthenticationLocked(message, seconds)


def refuse_if_known_locked(rt: Runtime) -> None:
    """Bearer tokens: refuse a source this worker knows to be locked (no database read)."""
    source = request_source.get()
    if source is None:
        return
    with _guard:
        until = rt.auth_locks.get(source)
    if until is not None and until > _now():
        raise _locked(rt, source, until)


def refuse_if_locked(rt: Runtime) -> None:
    """EST and CMP: refuse a locked source from the shared count, before any secret is checked."""
    source = request_source.get()
    if source is None:
        return
    since = _now() - _window(rt)
    if rt.repo.auth_failures(f"source:{source}", since) >= rt.settings.auth_source_limit:
        oldest = rt.repo.oldest_failure(f"source:{source}", since) or _now()
        raise _locked(rt, source, oldest + _window(rt))


def failed(rt: Runtime, kind: str, event_id: str | None = None) -> None:
    """Record one failed authentication (audited). Burns the event at its auth_event_limit-th failure; raises
    AuthenticationLocked when this failure locks the source."""
    source = request_source.get()
    subjects = [f"event:{event_id}"] if event_id else []
    subjects.append(f"source:{source}" if source is not None else "source:unknown")  # audited, never locked
    now = _now()
    counts = rt.repo.record_auth_failure(kind, subjects, source or "unknown", now, now - _window(rt))
    # an event's failures count over its whole life (at most a day: KOSHIN_PROOFING_TTL_MINUTES), not a window
    if event_id and rt.repo.auth_failures(f"event:{event_id}", now - EVENT_MEMORY) >= rt.settings.auth_event_limit:
        rt.repo.burn_event(event_id, f"{rt.settings.auth_event_limit} wrong one-time secrets", now)
    if source is not None and counts[f"source:{source}"] >= rt.settings.auth_source_limit:
        until = now + _window(rt)
        with _guard:
            rt.auth_locks[source] = until
        raise _locked(rt, source, until)
