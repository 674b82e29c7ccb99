"""Every ask of the four 2022 proposals (seed: 求める措置, the proposers' rebuttals after the 1st answer, the
co-proposers' alternatives, the review panel's points), one request each: allowed under its proposal's regime
by the rule that models it, at the level the brief's cross-walk gives (§3.6: unattended remote = IAL2, face to
face = IAL3, derived from the card's signature certificate with an on-chip key = IAL3), and refused under
current-2022 by the ministries' rule. docs/proposals.md is the same table in prose."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ca.profiles import AssuranceLevel, load_profiles
from service.policy import (
    Channel,
    Evidence,
    HolderState,
    InsertBeforeChange,
    Operation,
    PolicyRequest,
    ReplaceChange,
    Role,
    decide,
    load_regime,
)

E = Evidence
OIDS: Mapping[AssuranceLevel, str] = load_profiles().hierarchy.assurance_policies
CURRENT = load_regime("current-2022")
PROPOSALS = ("proposal-15", "proposal-90", "proposal-246", "proposal-280")
HERE, ELSEWHERE = "452017", "452033"

ID_CHECK = {E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH}
AUTH_PIN_FACE = {E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}
SIGN_PASSWORD_FACE = {E.SIGN_PASSWORD, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}
CARD_VIDEO = {E.PHOTO_ID_DOCUMENT, E.LIVE_FACE_CAPTURE}  # Wakayama: 3D video of the card + live face
WEB_ID_CHECK = {*ID_CHECK, E.LIVE_FACE_CAPTURE}  # Nara: Web等による本人確認
ON_CHIP_SIGNED = {E.CARD_SIGN_CERTIFICATE, E.DEVICE_GENERATED_KEY}
FACE_ON_CHIP = {*AUTH_PIN_FACE, E.DEVICE_GENERATED_KEY}
OTP_FACE = {E.ONE_TIME_PASSWORD, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}


def ask(
    operation: str,
    channel: str,
    role: str,
    evidence: set[Evidence],
    *,
    actor: str | None = HERE,
    venue: str | None = None,
    delegated: bool = False,
) -> PolicyRequest:
    return PolicyRequest(
        operation=Operation(operation),
        channel=Channel(channel),
        role=Role(role),
        actor_municipality=actor,
        holder_municipality=HERE,
        evidence=frozenset(evidence),
        holder=HolderState(age=40),
        post_office_delegated=delegated,
        venue=venue,
    )


# (proposal, the ask and its seed reference, request, current-2022's rule, the proposal's rule, level)
ASKS = [
    # --- #15 -------------------------------------------------------------------------------------------------
    ("proposal-15", "card renewal by PIN + face, kiosk (求める措置)",
     ask("card_renew", "kiosk_face_match", "kiosk", AUTH_PIN_FACE), "P2", "P15-RENEW", "IAL2"),
    ("proposal-15", "card renewal by PIN + face, online (求める措置)",
     ask("card_renew", "online_face_match", "holder_app", SIGN_PASSWORD_FACE), "P2", "P15-RENEW", "IAL2"),
    ("proposal-15", "card mailed by J-LIS (求める措置)",
     ask("card_delivery", "restricted_mail", "ca_operator", AUTH_PIN_FACE, actor=None),
     "DEFAULT-DENY", "P15-MAIL", "IAL2"),
    ("proposal-15", "certificates pre-loaded, PIN declared or reused (rebuttal)",
     ask("cert_issue", "online_face_match", "holder_app", AUTH_PIN_FACE), "P6", "P15-CERTS", "IAL2"),
    ("proposal-15", "certificates pre-loaded, kiosk application (rebuttal)",
     ask("cert_issue", "kiosk_face_match", "kiosk", AUTH_PIN_FACE), "P6", "P15-CERTS", "IAL2"),
    ("proposal-15", "3D video proves the card present (Wakayama 1)",
     ask("card_renew", "online_face_match", "holder_app", CARD_VIDEO), "P2", "P15-RENEW-VIDEO", "IAL2"),
    ("proposal-15", "card after the video renewal mailed by J-LIS (Wakayama 1)",
     ask("card_delivery", "restricted_mail", "ca_operator", CARD_VIDEO, actor=None),
     "DEFAULT-DENY", "P15-MAIL", "IAL2"),
    # --- #90 -------------------------------------------------------------------------------------------------
    ("proposal-90", "contractor ID check at outreach, new card (求める措置)",
     ask("card_issue", "outreach_in_person", "contractor", ID_CHECK), "P3", "P90-CONTRACTOR", "IAL3"),
    ("proposal-90", "contractor ID check at outreach, renewal (求める措置)",
     ask("card_renew", "outreach_in_person", "contractor", ID_CHECK, actor=None), "P3", "P90-CONTRACTOR", "IAL3"),
    ("proposal-90", "the card's certificates applied for at the outreach desk (求める措置)",
     ask("cert_issue", "outreach_in_person", "contractor", ID_CHECK), "P3", "P90-CONTRACTOR", "IAL3"),
    ("proposal-90", "card then by restricted mail (制度改正による効果)",
     ask("card_delivery", "restricted_mail", "municipal_staff", ID_CHECK), "P13-NO-F2F", "P90-MAIL", "IAL3"),
    ("proposal-90", "other municipalities' staff at wide-area venues (Nara)",
     ask("card_issue", "outreach_in_person", "other_municipality_staff", ID_CHECK, actor=ELSEWHERE,
         venue="wide_area_venue"), "P5", "P90-WIDE-AREA", "IAL3"),
    ("proposal-90", "a neighbouring town's own staff at a wide-area venue (Nara)",
     ask("card_renew", "outreach_in_person", "municipal_staff", ID_CHECK, actor=ELSEWHERE,
         venue="wide_area_venue"), "P5-MUNICIPALITY", "P90-WIDE-AREA", "IAL3"),
    ("proposal-90", "web-based ID check, applicant's own device (Nara)",
     ask("card_issue", "online_face_match", "holder_app", WEB_ID_CHECK, actor=None), "P2", "P90-WEB", "IAL2"),
    ("proposal-90", "web-based ID check at a contractor's outreach desk (Nara)",
     ask("card_renew", "online_face_match", "contractor", WEB_ID_CHECK), "P3", "P90-WEB", "IAL2"),
    ("proposal-90", "card after a web-based ID check by restricted mail (Nara)",
     ask("card_delivery", "restricted_mail", "municipal_staff", CARD_VIDEO), "P13-NO-F2F", "P90-WEB-MAIL", "IAL2"),
    # --- #246 ------------------------------------------------------------------------------------------------
    ("proposal-246", "certificate renewal online, key made on the chip (rebuttal, review panel)",
     ask("cert_renew", "online_sign_cert", "holder_app", ON_CHIP_SIGNED, actor=None),
     "P12", "P246-CERT-RENEW", "IAL3"),
    ("proposal-246", "certificate renewal at a kiosk, key made on the chip (求める措置)",
     ask("cert_renew", "kiosk_face_match", "kiosk", ON_CHIP_SIGNED, actor=None),
     "P6", "P246-CERT-RENEW-KIOSK", "IAL3"),
    ("proposal-246", "certificate renewal at a kiosk by PIN + face (rebuttal: apply the PIN-reset check)",
     ask("cert_renew", "kiosk_face_match", "kiosk", FACE_ON_CHIP, actor=None),
     "P6", "P246-CERT-RENEW-FACE", "IAL2"),
    ("proposal-246", "certificate renewal online by PIN + face (rebuttal: apply the PIN-reset check)",
     ask("cert_renew", "online_face_match", "holder_app", FACE_ON_CHIP, actor=None),
     "P12", "P246-CERT-RENEW-FACE", "IAL2"),
    ("proposal-246", "signature password reset online (求める措置)",
     ask("sign_password_reset", "online_face_match", "holder_app", AUTH_PIN_FACE, actor=None),
     "P10-ELSEWHERE", "P246-SIGN-PIN-ONLINE", "IAL2"),
    ("proposal-246", "auth PIN reset online (求める措置)",
     ask("auth_pin_reset", "online_face_match", "holder_app", SIGN_PASSWORD_FACE, actor=None),
     "P10-ELSEWHERE", "P246-AUTH-PIN-ONLINE", "IAL2"),
    ("proposal-246", "other PINs reset at a kiosk (求める措置)",
     ask("other_pin_reset", "kiosk_face_match", "kiosk", AUTH_PIN_FACE, actor=None),
     "P10-ELSEWHERE", "P246-OTHER-PIN", "IAL2"),
    ("proposal-246", "other PINs reset online (求める措置)",
     ask("other_pin_reset", "online_face_match", "holder_app", SIGN_PASSWORD_FACE, actor=None),
     "P10-ELSEWHERE", "P246-OTHER-PIN-ONLINE", "IAL2"),
    ("proposal-246", "auth PIN reset at a kiosk by OTP + face, long password forgotten (rebuttal)",
     ask("auth_pin_reset", "kiosk_face_match", "kiosk", OTP_FACE, actor=None),
     "P10-ELSEWHERE", "P246-PIN-OTP", "IAL2"),
    ("proposal-246", "other PINs reset online by OTP + face (rebuttal)",
     ask("other_pin_reset", "online_face_match", "holder_app", OTP_FACE, actor=None),
     "P10-ELSEWHERE", "P246-PIN-OTP", "IAL2"),
    # --- #280 ------------------------------------------------------------------------------------------------
    ("proposal-280", "card renewal online, photo comparison + PIN (求める措置)",
     ask("card_renew", "online_face_match", "holder_app", AUTH_PIN_FACE, actor=None), "P2", "P280-RENEW", "IAL2"),
    ("proposal-280", "card renewal at a kiosk (求める措置)",
     ask("card_renew", "kiosk_face_match", "kiosk", SIGN_PASSWORD_FACE, actor=None), "P2", "P280-RENEW", "IAL2"),
    ("proposal-280", "renewed card by restricted mail (求める措置)",
     ask("card_delivery", "restricted_mail", "municipal_staff", AUTH_PIN_FACE), "P13-NO-F2F", "P280-MAIL", "IAL2"),
    ("proposal-280", "card renewal at a state-run large-scale venue (rebuttal)",
     ask("card_renew", "outreach_in_person", "other_municipality_staff", ID_CHECK, actor=ELSEWHERE,
         venue="state_large_scale_venue"), "P5", "P280-STATE-VENUE", "IAL3"),
    ("proposal-280", "certificate renewal at a state-run venue by another town's staff (rebuttal)",
     ask("cert_renew", "outreach_in_person", "municipal_staff", ID_CHECK, actor=ELSEWHERE,
         venue="state_large_scale_venue"), "P5-MUNICIPALITY", "P280-STATE-VENUE", "IAL3"),
    ("proposal-280", "card hand-over at a state-run venue (rebuttal: 交付(更新)会場)",
     ask("card_delivery", "outreach_in_person", "other_municipality_staff", {E.PHOTO_ID_DOCUMENT},
         actor=ELSEWHERE, venue="state_large_scale_venue"), "P5", "P280-STATE-VENUE-HANDOVER", "IAL3"),
    ("proposal-280", "card hand-over at a state-run venue by the holder's own town (rebuttal)",
     ask("card_delivery", "outreach_in_person", "municipal_staff", {E.PHOTO_ID_DOCUMENT},
         venue="state_large_scale_venue"), "DEFAULT-DENY", "P280-STATE-VENUE-HANDOVER", "IAL3"),
    ("proposal-280", "certificate renewal at every post office, delegated or not (rebuttal)",
     ask("cert_renew", "post_office_in_person", "post_office_staff", ID_CHECK, actor=None),
     "P7-NOT-DELEGATED", "P280-POST-OFFICE", "IAL3"),
    ("proposal-280", "certificate issuance at every post office (rebuttal)",
     ask("cert_issue", "post_office_in_person", "post_office_staff", ID_CHECK, actor=None),
     "P7-NOT-DELEGATED", "P280-POST-OFFICE", "IAL3"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "label", "req", "ministries", "rule_id", "level"), ASKS, ids=[a[1] for a in ASKS])
def test_each_ask_allowed_by_its_proposal_refused_today(
    name: str, label: str, req: PolicyRequest, ministries: str, rule_id: str, level: str
) -> None:
    today = decide(req, CURRENT, OIDS)
    assert (today.allowed, today.rule_id) == (False, ministries), label
    decision = decide(req, load_regime(name), OIDS)
    assert (decision.allowed, decision.rule_id, decision.assurance) == (True, rule_id, AssuranceLevel(level)), label
    assert decision.policy_oid == OIDS[AssuranceLevel(level)]
    for other in PROPOSALS:  # an ask belongs to its proposal: no other regime grants it by that rule
        if other != name:
            assert decide(req, load_regime(other), OIDS).rule_id != rule_id


def _inserted(name: str) -> list[str]:
    return [c.rule.id for c in load_regime(name).changes if isinstance(c, InsertBeforeChange | ReplaceChange)]


@pytest.mark.parametrize("name", PROPOSALS)
def test_every_rule_a_proposal_adds_models_an_ask(name: str) -> None:
    asked = {rule_id for proposal, _, _, _, rule_id, _ in ASKS if proposal == name}
    assert set(_inserted(name)) == asked


IN_PERSON = {Channel.COUNTER_IN_PERSON, Channel.OUTREACH_IN_PERSON, Channel.POST_OFFICE_IN_PERSON}
REMOTE = {Channel.KIOSK_FACE_MATCH, Channel.ONLINE_FACE_MATCH, Channel.ONLINE_SIGN_CERT}


@pytest.mark.parametrize("name", PROPOSALS)
def test_levels_follow_the_cross_walk(name: str) -> None:
    """Brief §3.6: face to face is IAL3; derived from the card's signature certificate with an on-chip key is
    IAL3; any other unattended remote check is IAL2. A card mailed takes the level of the check it follows."""
    regime = load_regime(name)
    for rule_id in _inserted(name):
        rule = regime.rule(rule_id)
        channels = set(rule.match.channels or ())
        evidence = set(rule.match.evidence_all)
        derived = {E.CARD_SIGN_CERTIFICATE, E.DEVICE_GENERATED_KEY} <= evidence
        remote_check = bool(evidence & {E.LIVE_FACE_CAPTURE, E.FACE_MATCH_CHIP_PHOTO}) or bool(channels & REMOTE)
        if channels <= IN_PERSON or derived:
            expected = AssuranceLevel.IAL3
        elif channels == {Channel.RESTRICTED_MAIL}:
            expected = AssuranceLevel.IAL2 if remote_check else AssuranceLevel.IAL3
        else:
            assert channels <= REMOTE, rule_id
            expected = AssuranceLevel.IAL2
        assert rule.assurance == expected, rule_id


def test_wakayama_level_2_and_level_3_cards_side_by_side() -> None:
    """#15, Wakayama 2: cards renewed remotely are level 2, counter ones level 3, told apart by the policy OID,
    so the level-3 certificates' uses are unchanged."""
    regime = load_regime("proposal-15")
    remote = decide(ask("card_renew", "online_face_match", "holder_app", AUTH_PIN_FACE), regime, OIDS)
    counter = decide(ask("card_renew", "counter_in_person", "municipal_staff", ID_CHECK), regime, OIDS)
    assert (remote.rule_id, remote.assurance, counter.rule_id, counter.assurance) == (
        "P15-RENEW", AssuranceLevel.IAL2, "P1", AssuranceLevel.IAL3)  # fmt: skip
    assert remote.policy_oid != counter.policy_oid


def test_the_chip_objection_stands_without_an_on_chip_key() -> None:
    """#246: every certificate renewal it adds needs a key generated on the chip; without one, P6/P12 stay."""
    regime = load_regime("proposal-246")
    for channel, role, ministries in (("kiosk_face_match", "kiosk", "P6"), ("online_face_match", "holder_app", "P12"),
                                      ("online_sign_cert", "holder_app", "P12")):  # fmt: skip
        for evidence in (AUTH_PIN_FACE, {E.CARD_SIGN_CERTIFICATE}):
            assert decide(ask("cert_renew", channel, role, evidence), regime, OIDS).rule_id == ministries
    for rule_id in ("P246-CERT-RENEW", "P246-CERT-RENEW-KIOSK", "P246-CERT-RENEW-FACE"):
        assert "requires_key_generating_chip" in regime.rule(rule_id).conditions


def test_a_pin_reset_issues_nothing_and_needs_the_card() -> None:
    regime = load_regime("proposal-246")
    expired = PolicyRequest(Operation.AUTH_PIN_RESET, Channel.ONLINE_FACE_MATCH, Role.HOLDER_APP, None, HERE,
                            frozenset(OTP_FACE), HolderState(age=40, card_valid=False))  # fmt: skip
    assert decide(expired, regime, OIDS).rule_id == "P10-ELSEWHERE"
    otp_only = ask("other_pin_reset", "online_face_match", "holder_app", {E.ONE_TIME_PASSWORD})
    assert decide(otp_only, regime, OIDS).rule_id == "P10-ELSEWHERE"  # the face match is half of the check


def test_own_staff_at_a_state_venue_keep_the_counter_rule() -> None:
    decision = decide(ask("card_renew", "outreach_in_person", "municipal_staff", ID_CHECK,
                          venue="state_large_scale_venue"), load_regime("proposal-280"), OIDS)  # fmt: skip
    assert (decision.rule_id, decision.assurance) == ("P1", AssuranceLevel.IAL3)


def test_a_delegated_post_office_keeps_p7() -> None:
    decision = decide(ask("cert_renew", "post_office_in_person", "post_office_staff", ID_CHECK, actor=None,
                          delegated=True), load_regime("proposal-280"), OIDS)  # fmt: skip
    assert decision.rule_id == "P7"
