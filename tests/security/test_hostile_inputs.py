"""Hostile inputs against the REST service, on both databases: each case pins the exact status and problem type
(and the deciding rule where the policy refuses), and that nothing was stored, spent or revoked.

Run alone: ``.venv/bin/pytest tests/security/test_hostile_inputs.py``. The world it attacks is
tests/security/hostile_world.py. Authorisation comes first: every role against every foreign object.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.hostile_protocols import (  # noqa: F401 - collected here too
    test_a_chunked_body_over_the_limit_is_413,
    test_failures_from_an_unknown_source_are_audited_and_lock_nobody,
    test_five_wrong_enrollment_secrets_burn_the_event,
    test_hostile_json_bodies_are_refused,
    test_hostile_paths,
    test_ocsp_answers_only_for_its_ca_and_rfc_8954_nonces,
    test_tsa_nonces_are_bounded,
    test_wrong_bearer_tokens_lock_the_source_out,
)
from tests.security.hostile_text import (  # noqa: F401 - collected here: one suite a reviewer runs alone
    test_a_refused_csr_spends_nothing,
    test_registry_text_is_stored_nfc_normalised,
    test_registry_text_outside_the_repertoire_is_refused,
)
from tests.security.hostile_world import ACTORS, PROBLEM, World, build_world
from tests.support.api_world import Api

ROLE_FORBIDDEN = (403, "role-forbidden", None)
NOT_FOUND = (404, "not-found", None)


def denied(rule: str) -> tuple[int, str, str]:
    return (403, "policy-denied", rule)


@pytest.fixture(scope="module")
def world(hostile_api: Api) -> World:
    return build_world(hostile_api)


def _expect(response: Any, status: int, slug: str, rule: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.text
    body = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status, body
    if rule is not None:
        assert body["rule_id"] == rule, body


def _refused(world: World, method: str, path: str, who: str, body: Any, expected: tuple[Any, ...]) -> None:
    before = world.snapshot()
    _expect(world.call(method, path, who, body), *expected)
    assert world.snapshot() == before


# -- lost cards: every role against another holder's card ----------------------------------------------------
LOSS_REPORTERS = {"miyazaki_staff", "miyazaki_colleague", "miyazaki_fiscal", "matsuyama_staff", "matsuyama_fiscal",
                  "hanako_app", "taro_app", "unbound_app"}  # fmt: skip


HOME = {"hanako": "452017", "taro": "382019"}


def _may_report(actor: str, holder: str) -> bool:
    role, municipality, bound = ACTORS[actor]
    return bound == holder or (role in ("municipal_staff", "fiscal_year_staff") and municipality == HOME[holder])


def _loss_expected(actor: str) -> tuple[Any, ...]:
    if actor not in LOSS_REPORTERS:
        return ROLE_FORBIDDEN
    if ACTORS[actor][0] == "holder_app":
        return NOT_FOUND  # another holder's card is an unknown card to a holder app
    return denied("P5-MUNICIPALITY")  # staff of the other municipality


LOSS_CASES = [(a, h) for a in ACTORS for h in HOME if not _may_report(a, h)]


@pytest.mark.parametrize(("actor", "holder"), LOSS_CASES)
def test_nobody_reports_another_holders_card_lost(world: World, actor: str, holder: str) -> None:
    path = f"/v1/cards/{world.holders[holder].card}/lost"
    _refused(world, "POST", path, actor, None, _loss_expected(actor))


@pytest.mark.parametrize("actor", ["hanako_app", "taro_app", "unbound_app"])
def test_a_foreign_card_and_an_unknown_card_are_indistinguishable(world: World, actor: str) -> None:
    foreign = next(h for alias, h in world.holders.items() if alias != ACTORS[actor][2])
    unknown = "H" + "0" * (len(foreign.card) - 1)
    one = world.call("POST", f"/v1/cards/{foreign.card}/lost", actor)
    other = world.call("POST", f"/v1/cards/{unknown}/lost", actor)
    assert (one.status_code, one.headers["content-type"]) == (other.status_code, other.headers["content-type"])
    assert one.text.replace(foreign.card, "<card>") == other.text.replace(unknown, "<card>")


# -- revocation: the policy decides, with the rule ----------------------------------------------------------
ID = ["photo_id_document"]
REVOCATIONS: list[tuple[str, str, dict[str, Any], tuple[Any, ...]]] = [
    ("miyazaki_staff", "taro.signature", {"reason": "keyCompromise"}, denied("P5-MUNICIPALITY")),
    ("miyazaki_staff", "taro.signature", {"reason": "cessationOfOperation", "evidence": ID}, denied("P5-MUNICIPALITY")),
    ("miyazaki_staff", "taro.authentication", {"reason": "unspecified", "evidence": ID}, denied("P5-MUNICIPALITY")),
    ("miyazaki_fiscal", "taro.authentication", {"reason": "keyCompromise"}, denied("P5-MUNICIPALITY")),
    ("matsuyama_staff", "hanako.signature", {"reason": "keyCompromise"}, denied("P5-MUNICIPALITY")),
    (
        "matsuyama_fiscal",
        "hanako.authentication",
        {"reason": "keyCompromise", "evidence": ID},
        denied("P5-MUNICIPALITY"),
    ),
    (
        "miyazaki_staff",
        "taro.signature",
        {"reason": "affiliationChanged", "channel": "back_office"},
        denied("DEFAULT-DENY"),
    ),
    (
        "miyazaki_staff",
        "taro.signature",
        {"reason": "keyCompromise", "channel": "post_office_in_person"},
        denied("DEFAULT-DENY"),
    ),
    ("miyazaki_post", "hanako.signature", {"reason": "keyCompromise", "evidence": ID}, denied("P7-SCOPE")),
    ("miyazaki_post", "taro.signature", {"reason": "keyCompromise", "evidence": ID}, denied("P7-SCOPE")),
    ("matsuyama_post", "taro.authentication", {"reason": "keyCompromise"}, denied("P7-SCOPE")),
    ("matsuyama_post", "hanako.authentication", {"reason": "cessationOfOperation"}, denied("P7-SCOPE")),
    ("miyazaki_staff", "responder", {"reason": "keyCompromise"}, denied("REVOKE-INFRA-ELSE")),
    (
        "miyazaki_staff",
        "responder",
        {"reason": "cessationOfOperation", "evidence": ID, "channel": "back_office"},
        denied("REVOKE-INFRA-ELSE"),
    ),
    ("miyazaki_post", "responder", {"reason": "keyCompromise"}, denied("REVOKE-INFRA-ELSE")),
    ("matsuyama_staff", "responder", {"reason": "keyCompromise"}, denied("REVOKE-INFRA-ELSE")),
    ("operator", "responder", {"reason": "keyCompromise", "channel": "counter_in_person"}, denied("REVOKE-INFRA-ELSE")),
    ("miyazaki_staff", "hanako.signature", {"reason": "superseded", "evidence": ID}, denied("REVOKE-CA-REASONS")),
    ("miyazaki_staff", "hanako.signature", {"reason": "privilegeWithdrawn"}, denied("REVOKE-CA-REASONS")),
    (
        "miyazaki_fiscal",
        "hanako.authentication",
        {"reason": "certificateHold", "evidence": ID},
        denied("REVOKE-CA-REASONS"),
    ),
    ("miyazaki_staff", "hanako.signature", {"reason": "cessationOfOperation"}, denied("ID-CHECK-INCOMPLETE")),
    ("miyazaki_staff", "hanako.authentication", {"reason": "unspecified"}, denied("ID-CHECK-INCOMPLETE")),
    ("other_staff", "hanako.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("contractor", "hanako.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("kiosk", "hanako.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("hanako_app", "hanako.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("unbound_app", "taro.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("auditor", "taro.signature", {"reason": "keyCompromise"}, ROLE_FORBIDDEN),
    ("operator", "ffffffffffff0001", {"reason": "keyCompromise"}, (404, "certificate-not-found", None)),
    (
        "miyazaki_staff",
        "hanako.signature",
        {"reason": "keyCompromise", "channel": "telepathy"},
        (422, "invalid-request", None),
    ),
    (
        "miyazaki_staff",
        "hanako.signature",
        {"reason": "keyCompromise", "evidence": ["a_signed_affidavit"]},
        (422, "invalid-request", None),
    ),
]


def _serial(world: World, target: str) -> str:
    if target == "responder":
        return world.responder
    if "." not in target:
        return target
    holder, kind = target.split(".")
    return str(getattr(world.holders[holder], kind))


@pytest.mark.parametrize(("actor", "target", "body", "expected"), REVOCATIONS)
def test_revocation_is_decided_by_the_policy(
    world: World, actor: str, target: str, body: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    serial = _serial(world, target)
    _refused(world, "POST", f"/v1/certificates/{serial}/revoke", actor, body, expected)
    if expected[1] == "policy-denied":
        denial = world.api.runtime.repo.audit_records(limit=1_000_000)[-1]
        assert (denial.action, denial.object) == ("policy.deny", f"certificate:{serial}")
        assert (denial.rule_id, denial.decision) == (expected[2], "deny")


# -- proofing events belong to their recorder ---------------------------------------------------------------
SPENDS = [
    ("matsuyama_staff", (403, "proofing-event-not-yours", None)),
    ("matsuyama_fiscal", (403, "proofing-event-not-yours", None)),
    ("miyazaki_post", (403, "proofing-event-not-yours", None)),
    ("hanako_app", (403, "proofing-event-not-yours", None)),
    ("taro_app", NOT_FOUND),
    ("unbound_app", NOT_FOUND),
    ("kiosk", ROLE_FORBIDDEN),
    ("contractor", ROLE_FORBIDDEN),
    ("other_staff", ROLE_FORBIDDEN),
    ("operator", ROLE_FORBIDDEN),
]


@pytest.mark.parametrize(("actor", "expected"), SPENDS)
def test_a_proofing_event_is_not_a_bearer_capability(world: World, actor: str, expected: tuple[Any, ...]) -> None:
    event, hanako = world.event("hanako"), world.holders["hanako"]
    body = {"csr_pem": world.api.csr_pem, "resident_number": hanako.number, "certificate_type": "user-authentication",
            "proofing_event_id": event["id"], "card_number": hanako.card}  # fmt: skip
    _refused(world, "POST", "/v1/certificates", actor, body, expected)


@pytest.mark.parametrize(("actor", "holder"), [("hanako_app", "taro"), ("taro_app", "hanako"),
                                               ("unbound_app", "hanako"), ("unbound_app", "taro")])  # fmt: skip
def test_a_holder_app_records_nothing_for_another_holder(world: World, actor: str, holder: str) -> None:
    body = {"resident_number": world.holders[holder].number, "operation": "card_renew",
            "channel": "online_face_match", "evidence": ["face_match_chip_photo", "auth_pin"]}  # fmt: skip
    _refused(world, "POST", "/v1/proofing-events", actor, body, NOT_FOUND)
