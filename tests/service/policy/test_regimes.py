"""Regime files: the loader's checks, and what each 2022 proposal would change against current-2022."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
import yaml

from ca.profiles import AssuranceLevel, load_profiles
from service.policy import (
    DEFAULT_REGIME,
    Channel,
    Decision,
    Evidence,
    HolderState,
    Operation,
    PolicyRequest,
    Role,
    available_regimes,
    decide,
    load_regime,
)

E = Evidence
OIDS: Mapping[AssuranceLevel, str] = load_profiles().hierarchy.assurance_policies
SHIPPED = Path(str(resources.files("profiles") / "policy"))
PROPOSALS = ("proposal-15", "proposal-246", "proposal-280", "proposal-90")
CURRENT = load_regime("current-2022")

# --- shipped regimes ----------------------------------------------------------------------------------------


def test_available_regimes_lists_the_five() -> None:
    assert available_regimes() == ["current-2022", *PROPOSALS]
    assert DEFAULT_REGIME == "current-2022"


@pytest.mark.parametrize("name", PROPOSALS)
def test_proposals_differ_only_by_their_changes(name: str) -> None:
    data = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text(encoding="utf-8"))
    assert set(data) == {"name", "description", "base", "changes"}
    regime = load_regime(name)
    assert regime.base == "current-2022"
    assert regime.changes and all(c.because for c in regime.changes)
    for change in regime.changes:
        assert f"#{name.removeprefix('proposal-')}" in change.because  # each change cites its proposal
    base_ids = [rule.id for rule in CURRENT.rules]
    kept = [rule.id for rule in regime.rules if rule.id in base_ids]
    assert kept == base_ids  # only insertions: nothing of the baseline is removed or reordered


def test_every_rule_cites_a_source() -> None:
    for name in available_regimes():
        for rule in load_regime(name).rules:
            assert "seed #" in rule.basis or "[R" in rule.basis or "domain brief" in rule.basis, rule.id


# --- the grid: which decisions each proposal changes --------------------------------------------------------

EVIDENCE = {
    "none": frozenset(),
    "in_person": frozenset({E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH, E.F2F_AT_APPLICATION}),
    "auth_pin_face": frozenset({E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}),
    "sign_password_face": frozenset({E.SIGN_PASSWORD, E.FACE_MATCH_CHIP_PHOTO}),
    "sign_cert": frozenset({E.CARD_SIGN_CERTIFICATE, E.DEVICE_GENERATED_KEY}),
    "web_id_check": frozenset({E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH, E.LIVE_FACE_CAPTURE}),
    "otp_face": frozenset({E.ONE_TIME_PASSWORD, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}),
    "auth_pin_face_chip_key": frozenset({E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.DEVICE_GENERATED_KEY}),
}
PLACES = {"same": ("matsuyama", "matsuyama"), "other": ("sapporo", "matsuyama")}
VENUES = (None, "wide_area_venue", "state_large_scale_venue")


def _grid() -> list[PolicyRequest]:
    return [
        PolicyRequest(
            operation=operation,
            channel=channel,
            role=role,
            actor_municipality=PLACES[place][0],
            holder_municipality=PLACES[place][1],
            evidence=EVIDENCE[evidence],
            holder=HolderState(age=40),
            post_office_delegated=delegated,
            venue=venue,
        )
        for operation, channel, role, evidence, place, venue in itertools.product(
            Operation, Channel, Role, EVIDENCE, PLACES, VENUES
        )
        for delegated in ((True, False) if channel is Channel.POST_OFFICE_IN_PERSON else (True,))
    ]


GRID = _grid()
BASELINE = [decide(req, CURRENT, OIDS) for req in GRID]

HOLDER_AGENTS = {Role.KIOSK, Role.HOLDER_APP}
RESIDENT_STAFF = {Role.MUNICIPAL_STAFF, Role.FISCAL_YEAR_STAFF}
ANY_STAFF = {*RESIDENT_STAFF, Role.OTHER_MUNICIPALITY_STAFF}
REMOTE = (Channel.KIOSK_FACE_MATCH, Channel.ONLINE_FACE_MATCH)
OP = Operation
Triple = tuple[Operation, Channel, Role]


def _triples(operations: tuple[Operation, ...], channels: tuple[Channel, ...], roles: set[Role]) -> set[Triple]:
    return set(itertools.product(operations, channels, roles))


REMOTE_RENEWAL = _triples((OP.CARD_RENEW,), REMOTE, HOLDER_AGENTS)
EXPECTED_CHANGES = {
    "proposal-15": REMOTE_RENEWAL  # P15-RENEW, P15-RENEW-VIDEO
    | {(OP.CARD_DELIVERY, Channel.RESTRICTED_MAIL, Role.CA_OPERATOR)}  # P15-MAIL
    | _triples((OP.CERT_ISSUE,), REMOTE, HOLDER_AGENTS),  # P15-CERTS
    "proposal-280": REMOTE_RENEWAL  # P280-RENEW
    | _triples((OP.CARD_DELIVERY,), (Channel.RESTRICTED_MAIL,), RESIDENT_STAFF)  # P280-MAIL
    | _triples((OP.CARD_RENEW, OP.CERT_RENEW, OP.CARD_DELIVERY), (Channel.OUTREACH_IN_PERSON,), ANY_STAFF)  # venues
    | _triples((OP.CERT_ISSUE, OP.CERT_RENEW), (Channel.POST_OFFICE_IN_PERSON,), {Role.POST_OFFICE_STAFF}),
    "proposal-90": _triples(  # P90-CONTRACTOR, P90-WIDE-AREA
        (OP.CARD_ISSUE, OP.CARD_RENEW, OP.CERT_ISSUE), (Channel.OUTREACH_IN_PERSON,), {Role.CONTRACTOR, *ANY_STAFF}
    )
    | _triples(  # P90-WEB
        (OP.CARD_ISSUE, OP.CARD_RENEW, OP.CERT_ISSUE), (Channel.ONLINE_FACE_MATCH,), {Role.HOLDER_APP, Role.CONTRACTOR}
    )
    | _triples((OP.CARD_DELIVERY,), (Channel.RESTRICTED_MAIL,), RESIDENT_STAFF),  # P90-MAIL, P90-WEB-MAIL
    "proposal-246": {(OP.CERT_RENEW, Channel.ONLINE_SIGN_CERT, Role.HOLDER_APP)}  # P246-CERT-RENEW
    | _triples((OP.CERT_RENEW,), REMOTE, HOLDER_AGENTS)  # P246-CERT-RENEW-KIOSK, P246-CERT-RENEW-FACE
    | _triples((OP.OTHER_PIN_RESET,), (Channel.KIOSK_FACE_MATCH,), HOLDER_AGENTS)  # P246-OTHER-PIN
    | _triples(  # P246-SIGN-PIN-ONLINE, P246-AUTH-PIN-ONLINE, P246-OTHER-PIN-ONLINE
        (OP.SIGN_PASSWORD_RESET, OP.AUTH_PIN_RESET, OP.OTHER_PIN_RESET), (Channel.ONLINE_FACE_MATCH,), {Role.HOLDER_APP}
    )
    | _triples((OP.AUTH_PIN_RESET, OP.OTHER_PIN_RESET), REMOTE, HOLDER_AGENTS),  # P246-PIN-OTP
}


def _same(a: Decision, b: Decision) -> bool:
    return replace(a, regime="") == replace(b, regime="")


@pytest.mark.parametrize("name", PROPOSALS)
def test_a_proposal_changes_exactly_what_it_asked_for(name: str) -> None:
    regime = load_regime(name)
    changed = []
    for req, before in zip(GRID, BASELINE, strict=True):
        after = decide(req, regime, OIDS)
        if not _same(before, after):
            changed.append((req, before, after))
    assert {(req.operation, req.channel, req.role) for req, _, _ in changed} == EXPECTED_CHANGES[name]
    inserted = {change.rule.id for change in regime.changes if hasattr(change, "rule")}
    for _req, before, after in changed:
        assert not before.allowed and after.allowed  # proposals only relax
        assert after.rule_id in inserted


def test_the_grid_samples_most_rules_of_current_2022() -> None:
    hit = {decision.rule_id for decision in BASELINE}
    assert {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13"} <= hit


def _req(operation: str, channel: str, role: str, evidence: set[Evidence], **kw: object) -> PolicyRequest:
    fields: dict[str, object] = {
        "actor_municipality": "matsuyama",
        "holder_municipality": "matsuyama",
        "holder": HolderState(age=40),
        **kw,
    }
    return PolicyRequest(Operation(operation), Channel(channel), Role(role), evidence=frozenset(evidence), **fields)  # type: ignore[arg-type]


KIOSK_EVIDENCE = {E.AUTH_PIN, E.FACE_MATCH_CHIP_PHOTO, E.LIVE_FACE_CAPTURE}
PHOTO_ONLY = {E.SIGN_PASSWORD, E.FACE_MATCH_CHIP_PHOTO}
ID_CHECK = {E.PHOTO_ID_DOCUMENT, E.RESIDENT_REGISTER_MATCH}

CASES = [
    ("proposal-15", _req("card_renew", "online_face_match", "holder_app", KIOSK_EVIDENCE),
     "P2", "P15-RENEW", "IAL2", ("deliver_by_restricted_mail",)),
    ("proposal-15", _req("card_delivery", "restricted_mail", "ca_operator", KIOSK_EVIDENCE),
     "DEFAULT-DENY", "P15-MAIL", "IAL2", ("mailed_by_jlis",)),
    ("proposal-15", _req("card_renew", "kiosk_face_match", "kiosk", PHOTO_ONLY),  # #15 wants a live face capture
     "P2", "P2", None, ()),
    ("proposal-280", _req("card_renew", "kiosk_face_match", "kiosk", PHOTO_ONLY),
     "P2", "P280-RENEW", "IAL2", ("deliver_by_restricted_mail",)),
    ("proposal-280", _req("card_delivery", "restricted_mail", "municipal_staff", PHOTO_ONLY),
     "P13-NO-F2F", "P280-MAIL", "IAL2", ()),
    ("proposal-90", _req("card_issue", "outreach_in_person", "contractor", ID_CHECK),
     "P3", "P90-CONTRACTOR", "IAL3",
     ("contractor_confidentiality_duty", "resident_register_match_by_municipality", "deliver_by_restricted_mail")),
    ("proposal-90", _req("card_issue", "counter_in_person", "contractor", ID_CHECK), "P3", "P3", None, ()),
    ("proposal-90", _req("card_renew", "outreach_in_person", "other_municipality_staff", ID_CHECK,
                         actor_municipality="imabari", venue="wide_area_venue"),
     "P5", "P90-WIDE-AREA", "IAL3", ()),
    ("proposal-246", _req("cert_renew", "online_sign_cert", "holder_app",
                          {E.CARD_SIGN_CERTIFICATE, E.DEVICE_GENERATED_KEY}),
     "P12", "P246-CERT-RENEW", "IAL3", ("requires_key_generating_chip", "derived_from_card_sign_certificate")),
    ("proposal-246", _req("cert_renew", "online_sign_cert", "holder_app", {E.CARD_SIGN_CERTIFICATE}),
     "P12", "P12", None, ()),
    ("proposal-246", _req("other_pin_reset", "kiosk_face_match", "kiosk", KIOSK_EVIDENCE),
     "P10-ELSEWHERE", "P246-OTHER-PIN", "IAL2", ("complete_at_kiosk_within_24h",)),
    ("proposal-246", _req("other_pin_reset", "kiosk_face_match", "kiosk", {E.FACE_MATCH_CHIP_PHOTO}),
     "P10-ELSEWHERE", "P10-ELSEWHERE", None, ()),
]  # fmt: skip


@pytest.mark.parametrize(("name", "req", "before", "after", "assurance", "conditions"), CASES)
def test_proposal_decisions(
    name: str, req: PolicyRequest, before: str, after: str, assurance: str | None, conditions: tuple[str, ...]
) -> None:
    assert decide(req, CURRENT, OIDS).rule_id == before
    decision = decide(req, load_regime(name), OIDS)
    assert (decision.rule_id, decision.assurance, decision.conditions) == (after, assurance, conditions)
    assert decision.regime == name
    assert decision.allowed is (assurance is not None)


def test_proposal_246_reason_keeps_the_chip_objection() -> None:
    rule = load_regime("proposal-246").rule("P246-CERT-RENEW")
    assert "chip" in rule.reason and "P12" in rule.reason
