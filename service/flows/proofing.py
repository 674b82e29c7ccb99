"""Recording an identity verification: the policy decides whether this actor may, and what level it grants."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.db.issuance_context import ContextQuery, IssuanceContext
from service.db.registry_models import Actor, ProofingEvent
from service.errors import PolicyDenied, ResidentNotFound
from service.flows.authorisation import evaluate, hide_foreign, holder_state
from service.policy.model import Channel, Decision, Evidence, Operation, PolicyRequest, Role
from service.runtime import Runtime


@dataclass(frozen=True)
class ProofingInput:
    resident_number: str
    operation: Operation
    channel: Channel
    evidence: frozenset[Evidence]
    venue: str | None = None


def policy_request(actor: Actor, ctx: IssuanceContext, item: ProofingInput) -> PolicyRequest:
    """What the policy sees: the operation, the channel, who acts, what was shown, the holder's state (all read
    in the request's one context read)."""
    resident, municipality = ctx.resident, ctx.municipality
    if resident is None or municipality is None:
        raise ResidentNotFound("the request names no resident of this registry")
    return PolicyRequest(
        operation=item.operation,
        channel=item.channel,
        role=Role(actor.role),
        actor_municipality=actor.municipality_code,
        holder_municipality=resident.municipality_code,
        evidence=item.evidence,
        holder=holder_state(ctx),
        post_office_delegated=municipality.post_office_delegation,
        venue=item.venue,
        holder_bound=actor.role == Role.HOLDER_APP and actor.resident_id == resident.id,
    )


def record_proofing(rt: Runtime, actor: Actor, item: ProofingInput) -> tuple[ProofingEvent, Decision]:
    """Decide, then store a single-use event that expires; a refusal is audited and raised as PolicyDenied."""
    ctx = rt.repo.issuance_context(ContextQuery(resident_number=item.resident_number, policy_facts=True))
    resident = ctx.holder()
    hide_foreign(actor, resident.id, ResidentNotFound(f"no resident with number {item.resident_number!r}"))
    decision = evaluate(rt, policy_request(actor, ctx, item))
    repo = rt.repo.acting(actor.name, actor.role, decision.rule_id, "allow" if decision.allowed else "deny")
    if not decision.allowed or decision.assurance is None or decision.policy_oid is None:
        repo.record_denial(
            f"resident:{item.resident_number}", operation=item.operation, channel=item.channel, reason=decision.reason
        )
        raise PolicyDenied(decision.rule_id, decision.reason, decision.regime)
    now = datetime.now(UTC).replace(microsecond=0)
    event = ProofingEvent(
        id=str(uuid.uuid4()),
        actor_id=actor.id or 0,
        resident_id=resident.id or 0,
        operation=item.operation.value,
        channel=item.channel.value,
        evidence=json.dumps(sorted(e.value for e in item.evidence)),
        regime=decision.regime,
        rule_id=decision.rule_id,
        assurance_level=decision.assurance.value,
        policy_oid=decision.policy_oid,
        conditions=json.dumps(list(decision.conditions)),
        created_at=now,
        expires_at=now + timedelta(minutes=rt.settings.proofing_ttl_minutes),
    )
    return repo.record_proofing(event), decision
