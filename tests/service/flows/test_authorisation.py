"""What the object-level authorisation allows (the refusals are in tests/security/test_hostile_inputs.py): a
holder app on its own holder, revocation rules recorded in the audit row, a colleague finishing a counter visit,
a service certificate re-keyed on revocation, and no certificate on a card that is not active."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.protocols.cmp.responder import key_label, responder
from tests.support.api_world import COUNTER_EVIDENCE, Api

PROBLEM = "application/problem+json"


def _audit(api: Api, action: str, obj: str) -> list[Any]:
    return [r for r in api.runtime.repo.audit_records(limit=1_000_000) if r.action == action and r.object == obj]


def _pair(api: Api, resident: str) -> tuple[str, str]:
    signature = api.issue(resident, "signature")
    authentication = api.issue(resident, "user-authentication")
    assert signature.status_code == authentication.status_code == 201, signature.text + authentication.text
    return signature.json()["serial"], authentication.json()["serial"]


def test_the_holders_own_app_reports_the_card_lost_and_gets_no_personal_data(api: Api) -> None:
    resident = api.new_resident()
    serials = _pair(api, resident)
    app = api.runtime.repo.add_actor("own-app", "holder_app", None, resident)[1]
    card = api.card_of(resident)
    lost = api.client.post(f"/v1/cards/{card}/lost", headers={"Authorization": f"Bearer {app}"})
    assert lost.status_code == 200, lost.text
    assert lost.json() == {"resident": None, "changed_basic_attributes": [], "revoked_serials": list(serials)}
    assert "宮崎" not in lost.text and "1988" not in lost.text
    for serial in serials:
        (row,) = _audit(api, "certificate.revoke", serial)
        assert (row.rule_id, row.decision, row.role) == ("REVOKE-LOST-HOLDER", "allow", "holder_app")


def test_staff_revocations_carry_their_rule(api: Api) -> None:
    resident = api.new_resident()
    signature, authentication = _pair(api, resident)
    lost = api.post(f"/v1/certificates/{signature}/revoke", "municipal_staff", {"reason": "keyCompromise"})
    assert lost.status_code == 200, lost.text
    counter = api.post(f"/v1/certificates/{authentication}/revoke", "fiscal_year_staff",
                       {"reason": "cessationOfOperation", "evidence": ["photo_id_document"]})  # fmt: skip
    assert counter.status_code == 200, counter.text
    assert [(r.rule_id, r.decision) for r in _audit(api, "certificate.revoke", signature)] == [
        ("REVOKE-LOST-STAFF", "allow")
    ]
    assert [(r.rule_id, r.decision) for r in _audit(api, "certificate.revoke", authentication)] == [
        ("REVOKE-COUNTER", "allow")
    ]


def test_an_address_change_revokes_under_the_registry_rule(api: Api) -> None:
    resident = api.new_resident()
    signature, _ = _pair(api, resident)
    moved = api.client.patch(f"/v1/residents/{resident}", json={"address": "宮崎県宮崎市橘通東二丁目2番2号"},
                             headers=api.as_("municipal_staff"))  # fmt: skip
    assert moved.status_code == 200 and moved.json()["revoked_serials"] == [signature], moved.text
    assert [(r.rule_id, r.decision) for r in _audit(api, "certificate.revoke", signature)] == [
        ("REVOKE-REGISTRY-STAFF", "allow")
    ]


def test_a_colleague_of_the_same_municipality_finishes_the_counter_visit(api: Api) -> None:
    resident = api.new_resident()
    event = api.proof(resident).json()
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event["id"], "card_number": api.card_of(resident)}  # fmt: skip
    issued = api.post("/v1/certificates", "fiscal_year_staff", body)  # recorded by municipal_staff; P1-CERT admits
    assert issued.status_code == 201, issued.text


def test_a_bound_holder_app_is_judged_by_the_policy_on_its_own_holder(api: Api) -> None:
    resident = api.new_resident()
    app = api.runtime.repo.add_actor("policy-app", "holder_app", None, resident)[1]
    body = {"resident_number": resident, "operation": "card_renew", "channel": "online_face_match",
            "evidence": ["face_match_chip_photo", "auth_pin"]}  # fmt: skip
    refused = api.client.post("/v1/proofing-events", json=body, headers={"Authorization": f"Bearer {app}"})
    assert refused.status_code == 403 and refused.json()["rule_id"] == "P2", refused.text


def test_no_certificate_goes_on_a_lost_card(api: Api) -> None:
    resident = api.new_resident()
    card = api.card_of(resident)
    assert api.post(f"/v1/cards/{card}/lost", "municipal_staff").status_code == 200
    event = api.proof(resident).json()
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event["id"], "card_number": card}  # fmt: skip
    refused = api.post("/v1/certificates", "municipal_staff", body)
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM, refused.text
    assert refused.json()["type"] == "/problems/card-unusable" and "lost" in refused.json()["detail"]
    assert api.get(f"/v1/proofing-events/{event['id']}", "auditor").json()["used"] is False


def test_revoking_a_cmp_responder_rekeys_it(api: Api) -> None:
    rt = api.runtime
    before = responder(rt, "user-authentication")
    old_spki = rt.session.public_key_der(key_label(rt, "user-authentication"))
    serial = format(before.certificate.serial_number, "x")
    refused = api.post(f"/v1/certificates/{serial}/revoke", "municipal_staff",
                       {"reason": "keyCompromise", "evidence": COUNTER_EVIDENCE})  # fmt: skip
    assert refused.status_code == 403 and refused.json()["rule_id"] == "REVOKE-INFRA-ELSE", refused.text
    revoked = api.post(f"/v1/certificates/{serial}/revoke", "ca_operator", {"reason": "keyCompromise"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked", revoked.text
    after = responder(rt, "user-authentication")
    new_spki = after.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert after.certificate.serial_number != before.certificate.serial_number
    assert (
        new_spki
        != old_spki
        == before.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    assert new_spki == rt.session.public_key_der(key_label(rt, "user-authentication"))
    assert x509.ExtendedKeyUsage in [type(e.value) for e in after.certificate.extensions]
    (row,) = _audit(api, "certificate.revoke", revoked.json()["serial"])
    assert (row.rule_id, row.decision) == ("REVOKE-INFRA", "allow")
