"""The decision engine on hand-made rules: first match wins, default deny, match-key semantics, policy OIDs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from ca.profiles import AssuranceLevel, load_profiles
from service.policy import (
    DEFAULT_RULE_ID,
    AssuranceUnmapped,
    Channel,
    Decision,
    Evidence,
    HolderState,
    Match,
    Operation,
    PolicyRequest,
    Regime,
    Role,
    Rule,
    decide,
    load_regime,
    rule_matches,
)

E = Evidence
OIDS: Mapping[AssuranceLevel, str] = load_profiles().hierarchy.assurance_policies


def request(
    operation: str,
    channel: str,
    role: str,
    evidence: set[Evidence] | None = None,
    *,
    actor: str | None = "matsuyama",
    home: str | None = "matsuyama",
    holder: HolderState | None = None,
    venue: str | None = None,
) -> PolicyRequest:
    return PolicyRequest(
        operation=Operation(operation),
        channel=Channel(channel),
        role=Role(role),
        actor_municipality=actor,
        holder_municipality=home,
        evidence=frozenset(evidence or ()),
        holder=holder or HolderState(age=40),
        venue=venue,
    )


def _rule(rule_id: str = "R1", decision: str = "allow", **match: object) -> Rule:
    data: dict[str, object] = {
        "id": rule_id,
        "title": "t",
        "match": {"operations": ["card_issue"], **match},
        "decision": decision,
        "reason": "r",
        "basis": "test",
    }
    if decision == "allow":
        data["assurance"] = "IAL2"
    return Rule.model_validate(data)


def _regime(*rules: Rule) -> Regime:
    return Regime(name="test", description="d", base=None, changes=(), rules=rules)


def test_default_deny() -> None:
    decision = decide(request("card_issue", "counter_in_person", "kiosk"), _regime(), OIDS)
    assert decision == Decision(
        allowed=False,
        rule_id=DEFAULT_RULE_ID,
        reason="no rule allows this combination",
        assurance=None,
        policy_oid=None,
        conditions=(),
        basis=decision.basis,
        regime="test",
    )
    assert DEFAULT_RULE_ID == "DEFAULT-DENY"


def test_current_2022_default_deny() -> None:
    evidence = {E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH}
    decision = decide(request("card_issue", "counter_in_person", "kiosk", evidence), load_regime("current-2022"), OIDS)
    assert (decision.allowed, decision.rule_id, decision.assurance) == (False, "DEFAULT-DENY", None)


def test_first_matching_rule_wins() -> None:
    regime = _regime(_rule("FIRST", "deny"), _rule("SECOND", "allow"))
    assert decide(request("card_issue", "counter_in_person", "kiosk"), regime, OIDS).rule_id == "FIRST"
    regime = _regime(_rule("FIRST", "deny", channels=["back_office"]), _rule("SECOND", "allow"))
    assert decide(request("card_issue", "counter_in_person", "kiosk"), regime, OIDS).rule_id == "SECOND"


@pytest.mark.parametrize(
    ("given", "fits"),
    [
        (set(), False),
        ({E.AUTH_PIN}, False),
        ({E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO}, True),
        ({E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}, True),
    ],
)
def test_evidence_all_needs_every_item(given: set[Evidence], fits: bool) -> None:
    match = Match(operations=(Operation.CARD_ISSUE,), evidence_all=(E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO))
    assert rule_matches(match, request("card_issue", "kiosk_face_match", "kiosk", given)) is fits


@pytest.mark.parametrize(
    ("given", "fits"),
    [(set(), False), ({E.LIVE_FACE_CAPTURE}, False), ({E.SIGN_PASSWORD}, True), ({E.AUTH_PIN, E.SIGN_PASSWORD}, True)],
)
def test_evidence_any_needs_one_item(given: set[Evidence], fits: bool) -> None:
    match = Match(operations=(Operation.CARD_ISSUE,), evidence_any=(E.AUTH_PIN, E.SIGN_PASSWORD))
    assert rule_matches(match, request("card_issue", "kiosk_face_match", "kiosk", given)) is fits


def test_evidence_all_and_any_together() -> None:
    match = Match(
        operations=(Operation.CARD_ISSUE,), evidence_all=(E.FACE_MATCH_CHIP_PHOTO,), evidence_any=(E.AUTH_PIN,)
    )
    assert rule_matches(
        match, request("card_issue", "kiosk_face_match", "kiosk", {E.FACE_MATCH_CHIP_PHOTO, E.AUTH_PIN})
    )
    assert not rule_matches(match, request("card_issue", "kiosk_face_match", "kiosk", {E.AUTH_PIN}))
    assert not rule_matches(match, request("card_issue", "kiosk_face_match", "kiosk", {E.FACE_MATCH_CHIP_PHOTO}))


@pytest.mark.parametrize(
    ("actor", "home", "same"),
    [("a", "a", True), ("a", "b", False), (None, "a", False), ("a", None, False), (None, None, False)],
)
def test_same_municipality_needs_both_known_and_equal(actor: str | None, home: str | None, same: bool) -> None:
    req = request("card_issue", "counter_in_person", "municipal_staff", actor=actor, home=home)
    assert req.same_municipality is same
    assert rule_matches(Match(operations=(Operation.CARD_ISSUE,), same_municipality=True), req) is same
    assert rule_matches(Match(operations=(Operation.CARD_ISSUE,), same_municipality=False), req) is not same


def test_other_keys_narrow_the_match() -> None:
    base = request("card_issue", "outreach_in_person", "municipal_staff", venue="wide_area_venue")
    op = (Operation.CARD_ISSUE,)
    assert rule_matches(Match(operations=op, venues=("wide_area_venue",)), base)
    assert not rule_matches(Match(operations=op, venues=("company_outreach",)), base)
    assert not rule_matches(Match(operations=op, venues=("wide_area_venue",)), replace(base, venue=None))
    assert not rule_matches(Match(operations=op, post_office_delegated=True), base)
    assert rule_matches(Match(operations=op, post_office_delegated=False), base)
    assert not rule_matches(Match(operations=op, roles=(Role.CONTRACTOR,)), base)
    assert not rule_matches(Match(operations=(Operation.CARD_RENEW,)), base)


@pytest.mark.parametrize(
    ("holder", "want", "fits"),
    [
        (HolderState(age=15), {"min_age": 15}, True),
        (HolderState(age=14), {"min_age": 15}, False),
        (HolderState(age=40, adult_ward=True), {"adult_ward": False}, False),
        (HolderState(age=40, evacuee=True), {"evacuee": True}, True),
        (HolderState(age=40, card_valid=False), {"card_valid": True}, False),
        (HolderState(age=40, sign_cert_valid=False), {"sign_cert_valid": False, "min_age": 18}, True),
    ],
)
def test_holder_subset(holder: HolderState, want: dict[str, object], fits: bool) -> None:
    match = Match.model_validate({"operations": ["card_issue"], "holder": want})
    assert rule_matches(match, request("card_issue", "counter_in_person", "kiosk", holder=holder)) is fits


def test_policy_oid_comes_from_the_hierarchy() -> None:
    policies = load_profiles().hierarchy.assurance_policies
    for level in AssuranceLevel:
        regime = _regime(Rule.model_validate({**_rule().model_dump(), "assurance": level}))
        decision = decide(request("card_issue", "counter_in_person", "kiosk"), regime, policies)
        assert (decision.assurance, decision.policy_oid) == (level, policies[level])
    assert policies[AssuranceLevel.IAL3] == "1.3.6.1.5.5.7.13.3"


def test_a_denial_has_no_policy_oid() -> None:
    decision = decide(request("card_issue", "counter_in_person", "kiosk"), _regime(_rule(decision="deny")), OIDS)
    assert (decision.allowed, decision.assurance, decision.policy_oid) == (False, None, None)


def test_an_unmapped_level_is_an_error() -> None:
    with pytest.raises(AssuranceUnmapped, match="IAL2"):
        decide(request("card_issue", "counter_in_person", "kiosk"), _regime(_rule()), {})
