"""``decide()``: the first rule of the regime whose match fits the request wins; no match is a refusal.

Pure: no I/O, no globals read, no clock. The caller supplies the regime and the assurance → policy OID map.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.policy.errors import AssuranceUnmapped
from service.policy.model import AssuranceLevel, Decision, HolderState, PolicyRequest
from service.policy.regime import HolderMatch, Match, Regime

DEFAULT_RULE_ID = "DEFAULT-DENY"
DEFAULT_REASON = "no rule allows this combination"
DEFAULT_BASIS = "default deny: a combination no rule of the regime names is refused (domain brief §6 item 10)"


def _holder_fits(want: HolderMatch, holder: HolderState) -> bool:
    if want.min_age is not None and holder.age < want.min_age:
        return False
    flags = (
        (want.adult_ward, holder.adult_ward),
        (want.evacuee, holder.evacuee),
        (want.card_valid, holder.card_valid),
        (want.sign_cert_valid, holder.sign_cert_valid),
    )
    return all(wanted is None or wanted == actual for wanted, actual in flags)


def rule_matches(match: Match, request: PolicyRequest) -> bool:
    """True when every key given in ``match`` fits ``request``."""
    checks = (
        request.operation in match.operations,
        match.channels is None or request.channel in match.channels,
        match.roles is None or request.role in match.roles,
        match.same_municipality is None or match.same_municipality == request.same_municipality,
        all(item in request.evidence for item in match.evidence_all),
        match.evidence_any is None or any(item in request.evidence for item in match.evidence_any),
        match.post_office_delegated is None or match.post_office_delegated == request.post_office_delegated,
        match.venues is None or request.venue in match.venues,
        match.holder is None or _holder_fits(match.holder, request.holder),
        match.revocation_reasons is None or request.revocation_reason in match.revocation_reasons,
        match.infrastructure is None or match.infrastructure == request.infrastructure,
        match.holder_bound is None or match.holder_bound == request.holder_bound,
    )
    return all(checks)


def decide(request: PolicyRequest, regime: Regime, policy_oids: Mapping[AssuranceLevel, str]) -> Decision:
    """Decide ``request`` under ``regime``; ``policy_oids`` maps the resulting assurance level to its OID."""
    for rule in regime.rules:
        if not rule_matches(rule.match, request):
            continue
        oid: str | None = None
        if rule.allows and rule.assurance is not None:
            try:
                oid = policy_oids[rule.assurance]
            except KeyError:
                raise AssuranceUnmapped(f"rule {rule.id}: no policy OID for {rule.assurance}") from None
        return Decision(
            allowed=rule.allows,
            rule_id=rule.id,
            reason=rule.reason,
            assurance=rule.assurance if rule.allows else None,
            policy_oid=oid,
            conditions=rule.conditions,
            basis=rule.basis,
            regime=regime.name,
        )
    return Decision(
        allowed=False,
        rule_id=DEFAULT_RULE_ID,
        reason=DEFAULT_REASON,
        assurance=None,
        policy_oid=None,
        conditions=(),
        basis=DEFAULT_BASIS,
        regime=regime.name,
    )
