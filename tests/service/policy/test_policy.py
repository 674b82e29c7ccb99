"""The decision engine and the current-2022 regime: one seed-described request per row P1-P13 and more."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ca.profiles import AssuranceLevel, load_profiles
from service.policy import (
    Channel,
    Evidence,
    HolderState,
    Operation,
    PolicyRequest,
    Role,
    decide,
    load_regime,
)

E = Evidence
ID_CHECK = frozenset({E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH})
OIDS: Mapping[AssuranceLevel, str] = load_profiles().hierarchy.assurance_policies
CURRENT = load_regime("current-2022")


def request(
    operation: str,
    channel: str,
    role: str,
    evidence: frozenset[Evidence] | set[Evidence] = frozenset(),
    *,
    actor: str | None = "matsuyama",
    home: str | None = "matsuyama",
    holder: HolderState | None = None,
    delegated: bool = False,
    venue: str | None = None,
    reason: str | None = None,
    infrastructure: bool = False,
    bound: bool = False,
) -> PolicyRequest:
    if operation == "revoke" and reason is None:
        reason = "cessationOfOperation"  # a holder's own request: the credential is no longer wanted
    return PolicyRequest(
        operation=Operation(operation),
        channel=Channel(channel),
        role=Role(role),
        actor_municipality=actor,
        holder_municipality=home,
        evidence=frozenset(evidence),
        holder=holder or HolderState(age=40),
        post_office_delegated=delegated,
        venue=venue,
        revocation_reason=reason,
        infrastructure=infrastructure,
        holder_bound=bound,
    )


KIOSK_SIGN_RESET = {E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}
KIOSK_AUTH_RESET = {E.SIGN_PASSWORD, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}
PHONE = {E.CARD_SIGN_CERTIFICATE, E.DEVICE_GENERATED_KEY}
OTHER = "sapporo"

# (case id, request, allowed, rule id, assurance): each a request the seed or the brief describes.
ROWS = [
    ("P1 counter renewal", request("card_renew", "counter_in_person", "municipal_staff", ID_CHECK), True, "P1", "IAL3"),
    ("P1 fiscal-year staff outreach", request("card_issue", "outreach_in_person", "fiscal_year_staff", ID_CHECK),
     True, "P1", "IAL3"),
    ("P2 online renewal", request("card_renew", "online_face_match", "holder_app", KIOSK_SIGN_RESET),
     False, "P2", None),
    ("P2 kiosk renewal", request("card_renew", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET), False, "P2", None),
    ("P2 online first issue", request("card_issue", "online_sign_cert", "holder_app", PHONE), False, "P2", None),
    ("P3 contractor outreach", request("card_issue", "outreach_in_person", "contractor", ID_CHECK),
     False, "P3", None),
    ("P3 contractor counter", request("cert_renew", "counter_in_person", "contractor", ID_CHECK), False, "P3", None),
    ("P4 contractor terminal", request("back_office", "back_office", "contractor"), True, "P4", "IAL3"),
    ("P5 other municipality", request("card_issue", "outreach_in_person", "other_municipality_staff", ID_CHECK,
                                      actor=OTHER), False, "P5", None),
    ("P5 wide-area venue studied", request("card_issue", "outreach_in_person", "other_municipality_staff", ID_CHECK,
                                           actor=OTHER, venue="wide_area_venue"), False, "P5", None),
    ("P5 staff of another town", request("card_renew", "counter_in_person", "municipal_staff", ID_CHECK,
                                         actor=OTHER), False, "P5-MUNICIPALITY", None),
    ("P5 unknown municipality", request("card_renew", "counter_in_person", "municipal_staff", ID_CHECK,
                                        actor=None), False, "P5-MUNICIPALITY", None),
    ("P5 evacuee", request("card_issue", "counter_in_person", "other_municipality_staff", ID_CHECK, actor=OTHER,
                           holder=HolderState(age=70, evacuee=True)), True, "P5-EVACUEE", "IAL3"),
    ("P5 company outreach", request("card_issue", "outreach_in_person", "municipal_staff", ID_CHECK, actor=OTHER,
                                    venue="company_outreach"), True, "P5-COMPANY", "IAL3"),
    ("P6 online cert issue", request("cert_issue", "online_face_match", "holder_app", KIOSK_SIGN_RESET),
     False, "P6", None),
    ("P6 kiosk cert renewal", request("cert_renew", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET),
     False, "P6", None),
    ("P7 delegated post office", request("cert_renew", "post_office_in_person", "post_office_staff", ID_CHECK,
                                         actor=None, delegated=True), True, "P7", "IAL3"),
    ("P7 not delegated", request("cert_issue", "post_office_in_person", "post_office_staff", ID_CHECK, actor=None),
     False, "P7-NOT-DELEGATED", None),
    ("P7 card at post office", request("card_renew", "post_office_in_person", "post_office_staff", ID_CHECK,
                                       actor=None, delegated=True), False, "P7-SCOPE", None),
    ("P8 kiosk sign reset", request("sign_password_reset", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET),
     True, "P8", "IAL2"),
    ("P9 kiosk auth reset", request("auth_pin_reset", "kiosk_face_match", "holder_app", KIOSK_AUTH_RESET),
     True, "P9", "IAL2"),
    ("P10 both forgotten", request("sign_password_reset", "kiosk_face_match", "kiosk",
                                   {E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}), False, "P10-ELSEWHERE", None),
    ("P10 other PIN at kiosk", request("other_pin_reset", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET),
     False, "P10-ELSEWHERE", None),
    ("P10 other PIN at counter", request("other_pin_reset", "counter_in_person", "municipal_staff",
                                         {E.PHOTO_ID_DOCUMENT}), True, "P10", "IAL3"),
    ("P11 phone certificate", request("phone_cert_issue", "online_sign_cert", "holder_app", PHONE),
     True, "P11", "IAL3"),
    ("P11 no sign cert (under 15)", request("phone_cert_issue", "online_sign_cert", "holder_app", PHONE,
                                            holder=HolderState(age=12, sign_cert_valid=False)),
     False, "P11-ELSE", None),
    ("P11 rekey by the current phone certificate",
     request("phone_cert_issue", "online_sign_cert", "holder_app", {E.DERIVED_CERTIFICATE, E.DEVICE_GENERATED_KEY}),
     True, "P11-REKEY", "IAL3"),
    ("P11 key not on device", request("phone_cert_issue", "online_sign_cert", "holder_app",
                                      {E.CARD_SIGN_CERTIFICATE}), False, "P11-ELSE", None),
    ("P12 phone-style card renewal", request("cert_renew", "online_sign_cert", "holder_app", PHONE),
     False, "P12", None),
    ("P13 mail after F2F", request("card_delivery", "restricted_mail", "municipal_staff", {E.F2F_AT_APPLICATION}),
     True, "P13", "IAL3"),
    ("P13 mail without F2F", request("card_delivery", "restricted_mail", "municipal_staff", KIOSK_SIGN_RESET),
     False, "P13-NO-F2F", None),
    ("P13 counter hand-over", request("card_delivery", "counter_in_person", "municipal_staff",
                                      {E.PHOTO_ID_DOCUMENT}), True, "P13-COUNTER", "IAL3"),
    ("counter cert issue", request("cert_issue", "counter_in_person", "municipal_staff", ID_CHECK),
     True, "P1-CERT", "IAL3"),
    ("incomplete ID check", request("card_issue", "counter_in_person", "municipal_staff", {E.PHOTO_ID_DOCUMENT}),
     False, "ID-CHECK-INCOMPLETE", None),
    ("auditor", request("back_office", "back_office", "auditor"), False, "AUDITOR", None),
    ("revoke at counter", request("revoke", "counter_in_person", "fiscal_year_staff", {E.PHOTO_ID_DOCUMENT}),
     True, "REVOKE-COUNTER", "IAL3"),
    ("revoke signed online", request("revoke", "online_sign_cert", "holder_app", {E.CARD_SIGN_CERTIFICATE}),
     True, "REVOKE-SIGN-CERT", "IAL3"),
    ("revoke at kiosk", request("revoke", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET),
     True, "REVOKE-FACE-MATCH", "IAL2"),
    ("revoke by the CA", request("revoke", "back_office", "ca_operator"), True, "REVOKE-CA", "IAL3"),
    ("revoke by contractor", request("revoke", "back_office", "contractor"), False, "P3", None),
    ("revoke a service by the CA", request("revoke", "back_office", "ca_operator", actor=None, home=None,
                                           infrastructure=True), True, "REVOKE-INFRA", "IAL3"),
    ("revoke a service at the counter", request("revoke", "counter_in_person", "municipal_staff",
                                                {E.PHOTO_ID_DOCUMENT}, home=None, infrastructure=True),
     False, "REVOKE-INFRA-ELSE", None),
    ("revoke a service from the post office", request("revoke", "post_office_in_person", "post_office_staff",
                                                      home=None, infrastructure=True),
     False, "REVOKE-INFRA-ELSE", None),
    ("loss reported by the holder's app", request("revoke", "online_sign_cert", "holder_app", actor=None,
                                                  reason="keyCompromise", bound=True),
     True, "REVOKE-LOST-HOLDER", "IAL2"),
    ("loss reported by an unbound app", request("revoke", "online_sign_cert", "holder_app", actor=None,
                                                reason="keyCompromise"), False, "DEFAULT-DENY", None),
    ("loss reported at the municipality", request("revoke", "counter_in_person", "municipal_staff",
                                                  reason="keyCompromise"), True, "REVOKE-LOST-STAFF", "IAL2"),
    ("loss reported to another municipality", request("revoke", "counter_in_person", "municipal_staff",
                                                      reason="keyCompromise", actor="miyazaki"),
     False, "P5-MUNICIPALITY", None),
    ("post office revokes", request("revoke", "post_office_in_person", "post_office_staff", ID_CHECK,
                                    delegated=True), False, "P7-SCOPE", None),
    ("staff give the CA's reason", request("revoke", "counter_in_person", "municipal_staff", ID_CHECK,
                                           reason="superseded"), False, "REVOKE-CA-REASONS", None),
    ("registry change by the municipality", request("revoke", "back_office", "municipal_staff",
                                                    reason="affiliationChanged"),
     True, "REVOKE-REGISTRY-STAFF", "IAL3"),
    ("registry change of another municipality", request("revoke", "back_office", "municipal_staff",
                                                        reason="affiliationChanged", actor="miyazaki"),
     False, "DEFAULT-DENY", None),
    ("counter revocation without ID", request("revoke", "counter_in_person", "municipal_staff"),
     False, "ID-CHECK-INCOMPLETE", None),
]  # fmt: skip


@pytest.mark.parametrize(("req", "allowed", "rule_id", "assurance"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_current_2022_rows(req: PolicyRequest, allowed: bool, rule_id: str, assurance: str | None) -> None:
    decision = decide(req, CURRENT, OIDS)
    assert (decision.allowed, decision.rule_id, decision.assurance) == (allowed, rule_id, assurance)
    assert decision.regime == "current-2022"
    assert decision.reason and decision.basis
    assert decision.policy_oid == (OIDS[AssuranceLevel(assurance)] if assurance else None)
    if not allowed:
        assert decision.conditions == ()


def test_every_row_p1_to_p13_is_exercised() -> None:
    hit = {decide(r[1], CURRENT, OIDS).rule_id for r in ROWS}
    assert {f"P{n}" for n in range(1, 14)} <= hit


def test_every_rule_of_current_2022_is_reachable() -> None:
    hit = {decide(r[1], CURRENT, OIDS).rule_id for r in ROWS}
    assert {rule.id for rule in CURRENT.rules} <= hit


@pytest.mark.parametrize(
    ("req", "conditions"),
    [
        (request("back_office", "back_office", "contractor"), ("after_staff_id_check", "no_assurance_effect")),
        (request("sign_password_reset", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET),
         ("keeps_existing_certificate_level", "complete_at_kiosk_within_24h")),
        (request("phone_cert_issue", "online_sign_cert", "holder_app", PHONE), ("derived_from_card_sign_certificate",)),
        (request("cert_renew", "post_office_in_person", "post_office_staff", ID_CHECK, delegated=True),
         ("delegated_by_municipality",)),
    ],
)  # fmt: skip
def test_conditions(req: PolicyRequest, conditions: tuple[str, ...]) -> None:
    assert decide(req, CURRENT, OIDS).conditions == conditions


def test_p9_reason_says_it_was_study_in_2022() -> None:
    decision = decide(request("auth_pin_reset", "kiosk_face_match", "kiosk", KIOSK_AUTH_RESET), CURRENT, OIDS)
    assert "careful study" in decision.reason and "implemented afterwards" in decision.reason
    assert "[R16]" in decision.basis


def test_p12_reason_is_the_chip() -> None:
    decision = decide(request("cert_renew", "online_sign_cert", "holder_app", PHONE), CURRENT, OIDS)
    assert "impossible by specification" in decision.reason


@pytest.mark.parametrize("operation", list(Operation))
def test_auditor_may_do_nothing(operation: Operation) -> None:
    for channel in Channel:
        decision = decide(request(operation, channel, "auditor", set(Evidence)), CURRENT, OIDS)
        assert not decision.allowed


def test_kiosk_reset_needs_a_valid_card() -> None:
    holder = HolderState(age=40, card_valid=False)
    req = request("sign_password_reset", "kiosk_face_match", "kiosk", KIOSK_SIGN_RESET, holder=holder)
    assert decide(req, CURRENT, OIDS).rule_id == "P10-ELSEWHERE"
