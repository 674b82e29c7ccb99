"""One-time enrollment secrets: returned once with a new proofing event, derived on the token, never stored."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import text
from sqlmodel import Session

from hsm.key_rules import audit_entry
from service.errors import EnrollmentSecretInvalid
from service.flows.enrollment import authenticate_enrollment, enrollment_secret, event_actor
from tests.support.api_world import Api


def test_secret_is_shown_once_and_authenticates_its_event_only(api: Api) -> None:
    resident = api.new_resident()
    first, second = api.proof(resident).json(), api.proof(resident).json()
    secret = first["enrollment_secret"]
    assert len(secret) == 26 and secret != second["enrollment_secret"]
    assert api.get(f"/v1/proofing-events/{first['id']}", "auditor").json()["enrollment_secret"] is None
    rt = api.runtime
    event = authenticate_enrollment(rt, first["id"], secret)
    assert event.id == first["id"]
    assert authenticate_enrollment(rt, first["id"], secret.upper()).id == first["id"]  # base32 is case-blind
    assert event_actor(rt, event).role == "municipal_staff"
    with pytest.raises(EnrollmentSecretInvalid):
        authenticate_enrollment(rt, first["id"], second["enrollment_secret"])
    with pytest.raises(EnrollmentSecretInvalid):
        authenticate_enrollment(rt, "00000000-0000-4000-8000-000000000000", secret)
    assert enrollment_secret(rt, first["id"]) == secret  # recomputed on the token, the same every time


def test_secret_is_not_in_the_database(api: Api) -> None:
    resident = api.new_resident()
    secret = api.proof(resident).json()["enrollment_secret"]
    with Session(api.runtime.repo.engine) as session:
        for query in ("SELECT * FROM proofing_event", "SELECT * FROM audit_record"):
            rows = session.exec(text(query)).all()  # type: ignore[call-overload]
            assert secret not in repr(rows)


def test_mac_key_is_sensitive_and_never_extractable(api: Api) -> None:
    rt = api.runtime
    api.proof(api.new_resident())
    infos = [k for k in rt.session.key_objects() if k.label == rt.enrollment_mac_label]
    assert len(infos) == 1 and infos[0].object_class == "SECRET_KEY"
    assert infos[0].attributes["SENSITIVE"] is True and infos[0].attributes["EXTRACTABLE"] is False
    assert infos[0].attributes["NEVER_EXTRACTABLE"] is True and infos[0].attributes["LOCAL"] is True
    assert audit_entry(infos[0]).violations == ()


def test_est_simpleenroll_over_plain_http_is_refused_and_burns_the_secret(api: Api) -> None:
    """RFC 7030 3.2.3: Basic auth only under TLS. The in-process client speaks plain HTTP and the runtime is not
    marked as behind a TLS terminator (serve --tls marks it; tests/service/tls/test_tls.py enrols over TLS).
    The secret crossed the wire in clear, so the event is spent (audited) before the 403 goes out: the same
    secret then opens nothing, neither EST nor the same event through POST /v1/certificates."""
    resident = api.new_resident()
    event = api.proof(resident).json()
    csr_der = x509.load_pem_x509_csr(api.csr_pem.encode()).public_bytes(Encoding.DER)
    basic = base64.b64encode(f"{event['id']}:{event['enrollment_secret']}".encode()).decode()
    refused = api.client.post(
        "/.well-known/est/simpleenroll",
        content=base64.encodebytes(csr_der),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"},
    )
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/tls-required" and "was spent" in refused.json()["detail"]
    assert api.get(f"/v1/proofing-events/{event['id']}", "auditor").json()["used"] is True
    burns = [r for r in api.runtime.repo.audit_records(limit=100_000) if r.action == "proofing.burn"]
    assert [r.object for r in burns].count(event["id"]) == 1
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "user-authentication",
            "proofing_event_id": event["id"], "card_number": api.card_of(resident)}  # fmt: skip
    spent = api.post("/v1/certificates", "municipal_staff", body)
    assert spent.status_code == 409 and "already used" in spent.json()["detail"], spent.text
    wrong = base64.b64encode(f"{event['id']}:{'x' * 26}".encode()).decode()  # a wrong secret burns nothing
    other = api.proof(resident).json()
    guessed = base64.b64encode(f"{other['id']}:{'y' * 26}".encode()).decode()
    for header in (wrong, guessed):
        again = api.client.post("/.well-known/est/simpleenroll", content=base64.encodebytes(csr_der),
                                headers={"Authorization": f"Basic {header}"})  # fmt: skip
        assert again.status_code == 403 and "was spent" not in again.json()["detail"]
    assert api.get(f"/v1/proofing-events/{other['id']}", "auditor").json()["used"] is False
