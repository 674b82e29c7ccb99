"""Every error is an RFC 9457 problem document; nothing internal leaks; a refused request spends nothing."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from ca.issuance import CertificateAuthority, IssueRequest, PreparedCertificate
from hsm.errors import HsmError
from service.api.app import create_app
from tests.support.api_world import Api

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status, body
    assert body["title"] and isinstance(body["detail"], str)
    return body


def _certificate_body(api: Api, resident: str, event_id: str, csr_pem: str | None = None) -> dict[str, Any]:
    return {"csr_pem": csr_pem or api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event_id}  # fmt: skip


def _event(api: Api, resident: str) -> str:
    response = api.proof(resident)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _event_used(api: Api, event_id: str) -> bool:
    response = api.get(f"/v1/proofing-events/{event_id}", "municipal_staff")
    assert response.status_code == 200, response.text
    return bool(response.json()["used"])


def test_unmapped_exception_is_500_with_a_correlation_id_and_no_internals(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api.runtime.settings, runtime=api.runtime)

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with caplog.at_level(logging.ERROR, logger="koshin.api"), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = _problem(response, 500, "internal")
    correlation = body["correlation_id"]
    assert str(uuid.UUID(correlation)) == correlation  # a canonical UUID, not just something that parses
    for leak in ("secret internals", "RuntimeError", "Traceback", "File "):
        assert leak not in response.text
    logged = [r for r in caplog.records if correlation in r.getMessage()]
    assert logged and logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], RuntimeError)


def test_unknown_path_is_a_404_problem(api: Api) -> None:
    _problem(api.client.get("/v1/no-such-thing"), 404, "not-found")
    _problem(api.get("/v1/no-such-thing", "auditor"), 404, "not-found")


def test_wrong_method_is_a_405_problem(api: Api) -> None:
    _problem(api.client.delete("/v1/policy", headers=api.as_("auditor")), 405, "method-not-allowed")
    _problem(api.client.put("/healthz"), 405, "method-not-allowed")


def test_malformed_json_is_422_invalid_request(api: Api) -> None:
    headers = {**api.as_("municipal_staff"), "content-type": "application/json"}
    response = api.client.post("/v1/residents", content=b'{"resident_number": ', headers=headers)
    _problem(response, 422, "invalid-request")


def test_unknown_field_on_resident_is_422_and_nothing_is_created(api: Api) -> None:
    number = f"R-{uuid.uuid4().hex[:12]}"
    body = {"resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": "452017", "date_of_birth": "1988-04-12", "sex": "female", "nickname": "hana"}  # fmt: skip
    problem = _problem(api.post("/v1/residents", "municipal_staff", body), 422, "invalid-request")
    assert ["body", "nickname"] in [e["loc"] for e in problem["errors"]]
    _problem(api.get(f"/v1/residents/{number}", "municipal_staff"), 404, "not-found")


def test_unknown_revocation_reason_is_422_and_revoking_twice_is_409(api: Api) -> None:
    resident = api.new_resident()
    issued = api.issue(resident)
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]
    path = f"/v1/certificates/{serial}/revoke"

    problem = _problem(api.post(path, "municipal_staff", {"reason": "removeFromCRL"}), 422, "invalid-request")
    assert ["body", "reason"] in [e["loc"] for e in problem["errors"]]
    assert api.get(f"/v1/certificates/{serial}", "auditor").json()["status"] == "issued"

    first = api.post(path, "municipal_staff", {"reason": "keyCompromise"})
    assert first.status_code == 200 and first.json()["status"] == "revoked", first.text
    again = _problem(api.post(path, "ca_operator", {"reason": "superseded"}), 409, "revocation-refused")
    assert "already revoked" in again["detail"]
    assert api.get(f"/v1/certificates/{serial}", "auditor").json()["revocation_reason"] == "keyCompromise"


def test_another_residents_proofing_event_is_409_and_not_spent(api: Api) -> None:
    owner, other = api.new_resident(), api.new_resident()
    event_id = _event(api, owner)
    response = api.post("/v1/certificates", "municipal_staff", _certificate_body(api, other, event_id))
    problem = _problem(response, 409, "proofing-event-unusable")
    assert "another resident" in problem["detail"]
    assert not _event_used(api, event_id)
    assert api.post("/v1/certificates", "municipal_staff", _certificate_body(api, owner, event_id)).status_code == 201


def test_weak_csr_is_400_and_the_event_is_not_spent(api: Api) -> None:
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    weak_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .sign(weak_key, hashes.SHA256())
        .public_bytes(Encoding.PEM)
        .decode()
    )
    resident = api.new_resident()
    event_id = _event(api, resident)
    response = api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id, weak_csr))
    problem = _problem(response, 400, "csr-invalid")
    assert "1024" in problem["detail"] or "2048" in problem["detail"], problem
    assert not _event_used(api, event_id)
    good = api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id))
    assert good.status_code == 201, good.text
    assert _event_used(api, event_id)


class _TokenFailsOnSign:
    """The real authority for every check, and a token that fails when asked to sign."""

    def __init__(self, real: CertificateAuthority) -> None:
        self.real = real

    def prepare(self, request: IssueRequest) -> PreparedCertificate:
        return self.real.prepare(request)

    def sign(self, prepared: PreparedCertificate) -> x509.Certificate:
        raise HsmError("C_Sign failed: secret slot 0x2a, PIN handle 7")


def _assert_token_problem(response: httpx.Response) -> None:
    problem = _problem(response, 503, "token-unavailable")
    for leak in ("secret", "C_Sign", "PIN", "HsmError"):
        assert leak not in response.text
    assert "server log" in problem["detail"]


def test_token_unreachable_is_503_without_internals(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event_id = _event(api, resident)

    def unreachable() -> CertificateAuthority:
        raise HsmError("C_Sign failed: secret")

    monkeypatch.setattr(api.runtime, "authority", unreachable)
    _assert_token_problem(api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id)))
    monkeypatch.undo()
    assert not _event_used(api, event_id)
    assert (
        api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id)).status_code == 201
    )


def test_token_failing_to_sign_is_503_and_gives_the_event_back(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event_id = _event(api, resident)
    failing = _TokenFailsOnSign(api.runtime.authority())
    monkeypatch.setattr(api.runtime, "authority", lambda: failing)
    _assert_token_problem(api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id)))
    monkeypatch.undo()
    assert not _event_used(api, event_id)
    released = [r for r in api.runtime.repo.audit_records(0, 1_000_000) if r.object == event_id]
    assert [r.action for r in released] == ["proofing.record", "proofing.use", "proofing.release"]
    assert (
        api.post("/v1/certificates", "municipal_staff", _certificate_body(api, resident, event_id)).status_code == 201
    )


def test_health_is_503_when_the_token_does_not_answer(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def dead() -> None:
        raise HsmError("C_GenerateRandom: DeviceRemoved")

    monkeypatch.setattr(api.runtime.session, "ping", dead)
    response = api.client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and response.json()["token"].startswith("unavailable")
    assert response.json()["database"] == "ok"
