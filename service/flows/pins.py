"""PIN resets: the policy decides on a proofing event (kiosk: face match + the OTHER credential's PIN, P8/P9;
counter otherwise, P10); this spends the event and authorises one reset of one credential."""

from __future__ import annotations

from datetime import UTC, datetime

from service.db.registry_models import Actor, ProofingEvent
from service.errors import ProofingEventUnusable
from service.runtime import Runtime

RESET_OPERATIONS = {"signature": "sign_password_reset", "user-authentication": "auth_pin_reset"}


def authorise_pin_reset(rt: Runtime, actor: Actor, event_id: str, credential: str) -> ProofingEvent:
    operation = RESET_OPERATIONS.get(credential)
    if operation is None:
        raise ProofingEventUnusable(f"no PIN reset for credential {credential!r}")
    event = rt.repo.proofing_event(event_id)
    if event.operation != operation:
        raise ProofingEventUnusable(f"proofing event {event.id} is for {event.operation}, not {operation}")
    if event.actor_id != actor.id:
        raise ProofingEventUnusable(f"proofing event {event.id} was recorded by another actor")
    repo = rt.repo.acting(actor.name, actor.role, event.rule_id, "allow")
    now = datetime.now(UTC)
    if not repo.spend_for_pin_reset(event.id, credential, now):
        raise ProofingEventUnusable(f"proofing event {event.id} was used or has expired")
    event.used_at = now
    return event
