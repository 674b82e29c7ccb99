"""One-time enrollment secrets: what a proofing event hands a protocol client (EST Basic auth, CMP MAC).

The secret is HMAC-SHA256 over the event id under a generic secret key on the token, so it is never stored:
the service recomputes it to check a password (EST) or to key a password-based MAC (CMP). It is as single-use
as its proofing event, which issuance spends.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime

from service.db.registry_models import Actor, ProofingEvent
from service.errors import EnrollmentSecretInvalid, ProofingEventNotFound
from service.flows.lockout import failed
from service.runtime import Runtime

_CONTEXT = b"koshin enrolment secret v1\x00"  # fixed bytes: changing them would change every secret


def enrollment_secret(rt: Runtime, event_id: str) -> str:
    """The one-time secret of a proofing event: 26 base32 characters (130 bits), derived on the token."""
    digest = rt.session.hmac_sha256(rt.enrollment_mac_label, _CONTEXT + event_id.encode())
    return base64.b32encode(digest).decode()[:26].lower()


def authenticate_enrollment(rt: Runtime, event_id: str, secret: str) -> ProofingEvent:
    """The proofing event when ``secret`` is its one-time secret (constant-time); EnrollmentSecretInvalid otherwise.

    An unknown event and a wrong secret give the same answer, so event ids cannot be probed."""
    try:
        event = rt.repo.proofing_event(event_id)
    except ProofingEventNotFound:
        event = None
    expected = enrollment_secret(rt, event_id)
    if not hmac.compare_digest(expected.encode(), secret.strip().lower().encode()) or event is None:
        failed(rt, "est", event.id if event is not None else None)  # counted, audited; may lock or burn
        raise EnrollmentSecretInvalid("unknown proofing event or wrong one-time secret")
    return event


def event_actor(rt: Runtime, event: ProofingEvent) -> Actor:
    """The actor who recorded the proofing: protocol issuance is done on their behalf and audited as theirs."""
    return rt.repo.actor_by_id(event.actor_id)


def burn_exposed(rt: Runtime, event_id: str, secret: str) -> bool:
    """A request sent the one-time secret in clear (EST simpleenroll over plain HTTP): when it is the event's
    secret, the event is spent (audited) before the refusal goes out, so the exposed secret opens nothing, not
    even through CMP. Returns True when it burned an event."""
    try:
        event = authenticate_enrollment(rt, event_id, secret)
    except EnrollmentSecretInvalid:
        return False
    return rt.repo.burn_event(event.id, "its one-time secret was sent over plain HTTP", datetime.now(UTC))
