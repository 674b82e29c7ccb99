"""End-to-end flows over HTTP on both database backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy import update
from sqlmodel import Session, col

from service.db.registry_models import ProofingEvent
from tests.support.api_world import MATSUYAMA, Api, load_pem

PROBLEM = "application/problem+json"


def test_counter_issuance_stamps_the_policy_oid(api: Api) -> None:
    resident = api.new_resident()
    event = api.proof(resident)
    assert event.status_code == 201, event.text
    decision = event.json()["decision"]
    assert decision["allowed"] and decision["assurance_level"] == "IAL3" and decision["rule_id"]
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event.json()["id"], "card_number": api.card_of(resident)}  # fmt: skip
    issued = api.post("/v1/certificates", "municipal_staff", body)
    assert issued.status_code == 201, issued.text
    out = issued.json()
    assert out["status"] == "issued" and out["assurance_level"] == "IAL3"
    assert out["proofing_event_id"] == event.json()["id"]
    cert = load_pem(out["certificate_pem"])
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [decision["policy_oid"]]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {o.type_id.dotted_string: o.value[2:].decode() for o in san.get_values_for_type(x509.OtherName)}
    assert names["1.2.392.200149.8.5.5.1"] == "宮崎 花子"
    # single use
    again = api.post("/v1/certificates", "municipal_staff", body)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["type"] == "/problems/proofing-event-unusable"


def test_contractor_and_other_municipality_are_refused(api: Api) -> None:
    resident = api.new_resident()
    refused = api.proof(resident, who="contractor", channel="outreach_in_person")
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "/problems/policy-denied" and refused.json()["rule_id"]
    other = api.proof(resident, who="matsuyama_staff")
    assert other.status_code == 403 and other.json()["rule_id"]


def test_expired_event_cannot_be_used(api: Api) -> None:
    resident = api.new_resident()
    event = api.proof(resident).json()
    with Session(api.runtime.repo.engine) as session:
        expired = datetime.now(UTC) - timedelta(minutes=1)
        session.exec(update(ProofingEvent).where(col(ProofingEvent.id) == event["id"]).values(expires_at=expired))
        session.commit()
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event["id"]}  # fmt: skip
    response = api.post("/v1/certificates", "municipal_staff", body)
    assert response.status_code == 409 and "expired" in response.json()["detail"]


def test_attribute_change_revokes_signature_only_and_lost_card_revokes_both(api: Api) -> None:
    resident = api.new_resident()
    signature = api.issue(resident, "signature").json()
    auth = api.issue(resident, "user-authentication").json()
    changed = api.client.patch(f"/v1/residents/{resident}", json={"address": "宮崎県宮崎市別府町2番地"},
                               headers=api.as_("municipal_staff"))  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["changed_basic_attributes"] == ["address"]
    assert changed.json()["revoked_serials"] == [signature["serial"]]
    assert api.get(f"/v1/certificates/{signature['serial']}", "auditor").json()["revocation_reason"] == (
        "affiliationChanged"
    )
    assert api.get(f"/v1/certificates/{auth['serial']}", "auditor").json()["status"] == "issued"
    signature2 = api.issue(resident, "signature").json()
    lost = api.post(f"/v1/cards/{api.card_of(resident)}/lost", "municipal_staff")
    assert sorted(lost.json()["revoked_serials"]) == sorted([auth["serial"], signature2["serial"]])


def test_renewal_supersedes_the_predecessor(api: Api) -> None:
    resident = api.new_resident()
    first = api.issue(resident, "user-authentication").json()
    event = api.proof(resident, operation="cert_renew").json()
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "user-authentication",
            "proofing_event_id": event["id"], "replaces_serial": first["serial"]}  # fmt: skip
    renewed = api.post("/v1/certificates", "municipal_staff", body)
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["replaces_serial"] == first["serial"]
    old = api.get(f"/v1/certificates/{first['serial']}", "auditor").json()
    assert old["status"] == "revoked" and old["revocation_reason"] == "superseded"


def test_bad_requests_are_problems(api: Api) -> None:
    resident = api.new_resident()
    event = api.proof(resident).json()
    garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    bad_csr = {"csr_pem": garbage, "resident_number": resident, "certificate_type": "signature",
               "proofing_event_id": event["id"]}  # fmt: skip
    response = api.post("/v1/certificates", "municipal_staff", bad_csr)
    assert response.status_code == 400 and response.json()["type"] == "/problems/csr-invalid"
    # nothing was spent: the same event still issues
    good = {**bad_csr, "csr_pem": api.csr_pem}
    assert api.post("/v1/certificates", "municipal_staff", good).status_code == 201
    unknown_field = api.post("/v1/proofing-events", "municipal_staff", {"resident_number": resident,
                             "operation": "cert_issue", "channel": "counter_in_person", "shoe_size": 42})  # fmt: skip
    assert unknown_field.status_code == 422 and unknown_field.json()["type"] == "/problems/invalid-request"
    huge = api.client.post("/v1/registry/import", content=b"{" + b" " * 200_000 + b"}",
                           headers={**api.as_("municipal_staff"), "content-type": "application/json"})  # fmt: skip
    assert huge.status_code == 413 and huge.headers["content-type"] == PROBLEM
    missing = api.get("/v1/residents/NOPE-0000", "municipal_staff")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    no_token = api.client.get("/v1/policy")
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"].startswith("Bearer")


def test_health(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "token": "ok", "database": "ok"}


def test_other_municipality_resident(api: Api) -> None:
    resident = api.new_resident(MATSUYAMA, address="愛媛県松山市二番町四丁目7番地2")
    assert api.proof(resident, who="matsuyama_staff").status_code == 201


def test_staff_keep_only_their_own_register(api: Api) -> None:
    resident = api.new_resident(MATSUYAMA, address="愛媛県松山市二番町四丁目7番地2")
    patch = api.client.patch(f"/v1/residents/{resident}", json={"address": "愛媛県松山市一番町1番地"},
                             headers=api.as_("municipal_staff"))  # fmt: skip
    assert patch.status_code == 403 and patch.json()["type"] == "/problems/outside-jurisdiction"
    lost = api.post(f"/v1/cards/{api.card_of(resident)}/lost", "municipal_staff")
    assert lost.status_code == 403
    assert api.client.patch(f"/v1/residents/{resident}", json={"address": "愛媛県松山市一番町1番地"},
                            headers=api.as_("matsuyama_staff")).status_code == 200  # fmt: skip
    assert api.client.patch(f"/v1/residents/{resident}", json={"evacuee": True},
                            headers=api.as_("ca_operator")).status_code == 200  # fmt: skip


def test_bad_serials_are_400(api: Api) -> None:
    for serial in ("zz", "0", "-1", "f" * 41):
        response = api.get(f"/v1/certificates/{serial}", "auditor")
        assert response.status_code == 400, (serial, response.text)
        assert response.json()["type"] == "/problems/invalid-serial"
    revoke = api.post("/v1/certificates/zz/revoke", "ca_operator", {"reason": "superseded"})
    assert revoke.status_code == 400
