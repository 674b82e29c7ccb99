"""Who may act on which object, beyond the role an endpoint admits.

- A holder app acts for the one resident it is bound to (``actor.resident_id``). On anything else, a card,
  a resident, a certificate, it gets the answer an unknown object gets, so it can neither act on nor probe
  another holder's objects. An unbound holder app proves the holder in each request (the phone flows' card
  signature) and reaches no registry object by its token alone.
- A proofing event is spent by the actor who recorded it, or by staff of the recorder's municipality whose
  role the event's own rule admits (a colleague finishing the counter visit), or, for a card operation, by
  the CA operator's central card station (back-office processing, rule P4); nobody else.
- A card that is lost, revoked, superseded or expired carries no new certificate.
- A revocation is a policy decision like every other operation (``decide_revocation``): who, through which
  channel, for which reason, on which certificate (a holder's, or a service's), in which jurisdiction, with
  which evidence. The decision's rule goes into the audit row of the revocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from service.db.issuance_context import IssuanceContext
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, ProofingEvent
from service.db.unit import Acting
from service.errors import CardNotFound, CardUnusable, PolicyDenied, ProofingEventNotYours, ServiceError
from service.flows.registry_rules import age_on
from service.observability.metrics import DECISIONS
from service.policy.engine import decide
from service.policy.model import Channel, Decision, Evidence, HolderState, Operation, PolicyRequest, Role
from service.runtime import Runtime

HOLDER_APP = Role.HOLDER_APP.value
SPENDING_STAFF = frozenset({Role.MUNICIPAL_STAFF.value, Role.FISCAL_YEAR_STAFF.value})
CARD_OPERATIONS = frozenset({Operation.CARD_ISSUE.value, Operation.CARD_RENEW.value})

# The channel a request arrives through when the caller names none: where that role works.
ROLE_CHANNEL: dict[str, Channel] = {
    Role.MUNICIPAL_STAFF: Channel.COUNTER_IN_PERSON,
    Role.FISCAL_YEAR_STAFF: Channel.COUNTER_IN_PERSON,
    Role.OTHER_MUNICIPALITY_STAFF: Channel.COUNTER_IN_PERSON,
    Role.POST_OFFICE_STAFF: Channel.POST_OFFICE_IN_PERSON,
    Role.KIOSK: Channel.KIOSK_FACE_MATCH,
    Role.HOLDER_APP: Channel.ONLINE_SIGN_CERT,
    Role.CONTRACTOR: Channel.BACK_OFFICE,
    Role.CA_OPERATOR: Channel.BACK_OFFICE,
    Role.AUDITOR: Channel.BACK_OFFICE,
}


def evaluate(rt: Runtime, request: PolicyRequest, *, dry_run: bool = False) -> Decision:
    """The active regime's decision; counted for the metrics unless it is a dry run (POST /v1/policy/evaluate)."""
    decision = decide(request, rt.regime, rt.profiles.hierarchy.assurance_policies)
    if not dry_run:
        outcome = "allow" if decision.allowed else "deny"
        DECISIONS.labels(str(request.operation), str(request.channel), decision.rule_id, outcome).inc()
    return decision


def holder_state(ctx: IssuanceContext) -> HolderState:
    """The holder facts rules test, from the context read (``policy_facts`` for a live signature)."""
    resident = ctx.holder()
    today = datetime.now(UTC).date()
    return HolderState(
        age=age_on(resident.date_of_birth, today),
        adult_ward=resident.adult_ward,
        evacuee=resident.evacuee,
        card_valid=any(c.status == "active" and c.expires_on >= today for c in ctx.cards),
        sign_cert_valid=ctx.signature_live,
    )


def acts_for(actor: Actor, resident_id: int | None, *, proven: bool = False) -> bool:
    """False only for a holder app and a resident it is not bound to (every other role: the policy decides).
    ``proven``: the request itself proves the holder (signed with the holder's card or phone key), so an unbound
    holder app may act; a bound one still acts for its own holder only."""
    if actor.role != HOLDER_APP:
        return True
    if actor.resident_id is None:
        return proven
    return actor.resident_id == resident_id


def hide_foreign(actor: Actor, resident_id: int | None, unknown: ServiceError, *, proven: bool = False) -> None:
    """Raise ``unknown`` (the very error an object that does not exist gets) for a holder app's foreign object."""
    if not acts_for(actor, resident_id, proven=proven):
        raise unknown


def unknown_card(number: str) -> CardNotFound:
    return CardNotFound(f"no card with number {number!r}")  # the text the store gives an unknown number


def check_spender(rt: Runtime, actor: Actor, event: ProofingEvent) -> None:
    """The recorder spends its event; staff of the recorder's municipality may when the event's rule admits
    their role. ProofingEventNotYours otherwise."""
    if event.actor_id == actor.id:
        return
    recorder = rt.repo.actor_by_id(event.actor_id)
    try:
        roles = rt.regime.rule(event.rule_id).match.roles
    except KeyError:
        roles = ()  # recorded under a rule the current regime no longer has: only the recorder
    same_office = recorder.municipality_code is not None and recorder.municipality_code == actor.municipality_code
    if actor.role in SPENDING_STAFF and same_office and (roles is None or actor.role in roles):
        return
    if actor.role == Role.CA_OPERATOR and event.operation in CARD_OPERATIONS:
        return  # a central card station: the card is made off-site as back-office processing (rule P4)
    raise ProofingEventNotYours(
        f"proofing event {event.id} was recorded by another actor: only its recorder, or staff of the recorder's "
        f"municipality whose role rule {event.rule_id} admits, may use it"
    )


def check_card_usable(card: Card, today: date | None = None) -> None:
    """A new certificate goes on an active, unexpired card only."""
    today = today or datetime.now(UTC).date()
    if card.status != "active":
        raise CardUnusable(f"card {card.number} is {card.status}: no certificate is issued for it")
    if card.expires_on < today:
        raise CardUnusable(f"card {card.number} expired on {card.expires_on}: no certificate is issued for it")


@dataclass(frozen=True)
class RevocationAsk:
    """A revocation as asked: the reason, and the channel and evidence it comes with (channel: the role's)."""

    reason: str
    channel: Channel | None = None
    evidence: frozenset[Evidence] = frozenset()


def revocation_request(
    rt: Runtime, actor: Actor, ctx: IssuanceContext, record: CertificateRecord | None, ask: RevocationAsk
) -> PolicyRequest:
    """What the policy sees of a revocation of ``record`` (None: every certificate of a card, a loss report)."""
    resident, municipality = ctx.resident, ctx.municipality
    infrastructure = record is not None and record.profile in rt.profiles.servers
    holder = holder_state(ctx) if resident is not None else HolderState(age=0, card_valid=False, sign_cert_valid=False)
    return PolicyRequest(
        operation=Operation.REVOKE,
        channel=ask.channel or ROLE_CHANNEL[actor.role],
        role=Role(actor.role),
        actor_municipality=actor.municipality_code,
        holder_municipality=resident.municipality_code if resident is not None else None,
        evidence=ask.evidence,
        holder=holder,
        post_office_delegated=municipality.post_office_delegation if municipality is not None else False,
        revocation_reason=ask.reason,
        infrastructure=infrastructure,
        holder_bound=resident is not None and actor.role == HOLDER_APP and actor.resident_id == resident.id,
    )


def decide_revocation(
    rt: Runtime, actor: Actor, ctx: IssuanceContext, record: CertificateRecord | None, ask: RevocationAsk, obj: str
) -> Acting:
    """Who revokes, under which rule; a refusal is audited (on ``obj``) and raised as PolicyDenied."""
    decision = evaluate(rt, revocation_request(rt, actor, ctx, record, ask))
    who = Acting(actor.name, actor.role, decision.rule_id, "allow" if decision.allowed else "deny")
    if not decision.allowed:
        rt.repo.as_(who).record_denial(obj, operation=Operation.REVOKE.value, reason=decision.reason,
                                       revocation_reason=ask.reason)  # fmt: skip
        raise PolicyDenied(decision.rule_id, decision.reason, decision.regime)
    return who
