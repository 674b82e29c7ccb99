"""Hostile OCSP, TSA, HTTP bodies, paths, JSON and failed authentication (collected through
tests/security/test_hostile_inputs.py). Protocol endpoints answer in their own error format: an OCSPResponse
status, a TimeStampResp rejection."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asn1crypto import algos, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from ca.tsa import TimeStampFailure
from service.flows.lockout import failed, refuse_if_known_locked, refuse_if_locked, request_source
from tests.security.hostile_world import PROBLEM, World


def _certificate(world: World, serial: str) -> x509.Certificate:
    pem = world.call("GET", f"/v1/certificates/{serial}", "auditor").json()["certificate_pem"]
    return x509.load_pem_x509_certificate(pem.encode())


def _issuer(world: World, name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(world.api.runtime.ca_record(name, "issuing").certificate_der)


def _ocsp(world: World, path_ca: str, holder_ca: str, nonce: bytes | None) -> ocsp.OCSPResponse:
    serial = world.holders["hanako"].signature if holder_ca == "signature" else world.holders["hanako"].authentication
    builder = ocsp.OCSPRequestBuilder().add_certificate(_certificate(world, serial), _issuer(world, holder_ca),
                                                        hashes.SHA1())  # noqa: S303 - RFC 5019 CertIDs  # fmt: skip
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    response = world.call("POST", f"/ocsp/{path_ca}", None, content=builder.build().public_bytes(Encoding.DER),
                          headers={"content-type": "application/ocsp-request"})  # fmt: skip
    assert response.status_code == 200 and response.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.content)


S = ocsp.OCSPResponseStatus
OCSP_CASES = [
    ("signature-cert-at-the-auth-responder", "user-authentication", "signature", b"\x01" * 32, S.UNAUTHORIZED),
    ("auth-cert-at-the-signature-responder", "signature", "user-authentication", None, S.UNAUTHORIZED),
    ("empty-nonce", "signature", "signature", b"", S.MALFORMED_REQUEST),
    ("33-octet-nonce", "signature", "signature", b"\x02" * 33, S.MALFORMED_REQUEST),
    ("1000-octet-nonce", "user-authentication", "user-authentication", b"\x03" * 1000, S.MALFORMED_REQUEST),
    ("1-octet-nonce", "signature", "signature", b"\x04", S.SUCCESSFUL),
    ("32-octet-nonce", "user-authentication", "user-authentication", b"\x05" * 32, S.SUCCESSFUL),
]


@pytest.mark.parametrize(
    ("case", "path_ca", "holder_ca", "nonce", "status"), OCSP_CASES, ids=[c[0] for c in OCSP_CASES]
)
def test_ocsp_answers_only_for_its_ca_and_rfc_8954_nonces(
    world: World, case: str, path_ca: str, holder_ca: str, nonce: bytes | None, status: ocsp.OCSPResponseStatus
) -> None:
    answer = _ocsp(world, path_ca, holder_ca, nonce)
    assert answer.response_status is status, case
    if status is S.SUCCESSFUL and nonce is not None:
        assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def _stamp_request(nonce: int | None) -> bytes:
    imprint = tsp.MessageImprint({"hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                                  "hashed_message": hashlib.sha256(b"hostile").digest()})  # fmt: skip
    fields: dict[str, Any] = {"version": "v1", "message_imprint": imprint, "cert_req": True}
    if nonce is not None:
        fields["nonce"] = nonce
    return bytes(tsp.TimeStampReq(fields).dump())


TSA_CASES = [("negative", -5, "rejection"), ("zero", 0, "rejection"), ("2000-octet", 1 << 16000, "rejection"),
             ("161-bit", 1 << 160, "rejection"), ("64-bit", (1 << 63) + 12345, "granted"),
             ("absent", None, "granted")]  # fmt: skip


@pytest.mark.parametrize(("case", "nonce", "status"), TSA_CASES, ids=[c[0] for c in TSA_CASES])
def test_tsa_nonces_are_bounded(world: World, case: str, nonce: int | None, status: str) -> None:
    response = world.call("POST", "/tsa", None, content=_stamp_request(nonce),
                          headers={"content-type": "application/timestamp-query"})  # fmt: skip
    assert response.status_code == 200 and response.headers["content-type"] == "application/timestamp-reply"
    answer = (TimeStampFailure if status == "rejection" else tsp.TimeStampResp).load(response.content)
    assert answer["status"]["status"].native == status, (case, answer["status"].native)
    if status == "rejection":
        assert answer["status"]["fail_info"].native == {"bad_request"}


def _chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b"x" * 65536
        sent += 65536


@pytest.mark.parametrize("path", ["/v1/proofing-events", "/.well-known/cmp/p/signature", "/tsa", "/ocsp/signature"])
def test_a_chunked_body_over_the_limit_is_413(world: World, path: str) -> None:
    limit = world.api.runtime.settings.max_request_bytes
    before = world.snapshot()
    response = world.call("POST", path, "miyazaki_staff", content=_chunks(limit + 65536))
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM, response.text
    assert response.json()["type"] == "/problems/request-too-large"
    assert world.snapshot() == before


PATHS = [
    ("GET", "/v1/certificates/zz", (400, "invalid-serial")),
    ("GET", "/v1/certificates/0", (400, "invalid-serial")),
    ("GET", "/v1/certificates/" + "f" * 42, (400, "invalid-serial")),
    ("POST", "/v1/certificates/-1/revoke", (400, "invalid-serial")),
    ("POST", "/v1/cards/..%2F..%2Fetc%2Fpasswd/lost", (404, "not-found")),
    ("GET", "/v1/residents/R%00-1", (422, "invalid-request")),  # outside the resident-number pattern (a NUL)
    ("GET", "/crl/..%2Fsignature.crl", (404, "not-found")),
    ("GET", "/crl/evil.crl", (404, "not-found")),
    ("POST", "/ocsp/root", (404, "not-found")),
    ("GET", "/ca/%2e%2e.cer", (404, "not-found")),
    ("POST", "/.well-known/est/tls-server/simpleenroll", (403, "tls-required")),  # TLS first: nothing read
    ("GET", "/.well-known/est/tls-server/cacerts", (404, "not-found")),
    ("GET", "/v1/proofing-events/..%2F..%2Fpolicy", (404, "not-found")),
]


@pytest.mark.parametrize(("method", "path", "expected"), PATHS, ids=[f"{m} {p}" for m, p, _ in PATHS])
def test_hostile_paths(world: World, method: str, path: str, expected: tuple[int, str]) -> None:
    before = world.snapshot()
    body = {"reason": "keyCompromise"} if method == "POST" else None
    response = world.call(method, path, "operator", body)
    assert (response.status_code, response.json()["type"]) == (expected[0], f"/problems/{expected[1]}"), response.text
    assert world.snapshot() == before


def _proofing(world: World, **changes: Any) -> dict[str, Any]:
    body = {"resident_number": world.holders["hanako"].number, "operation": "cert_issue",
            "channel": "counter_in_person", "evidence": ["photo_id_document", "resident_register_match"]}  # fmt: skip
    return {**body, **changes}


INVALID = (422, "invalid-request")
BODIES: list[tuple[str, Any, tuple[int, str]]] = [
    ("not-json", b'{"resident_number": ', INVALID),
    ("json-array", b"[]", INVALID),
    ("unknown-field", None, INVALID),
    ("unknown-operation", None, INVALID),
    ("unknown-evidence", None, INVALID),
    ("evidence-not-a-list", None, INVALID),
    ("number-for-a-string", None, INVALID),
    ("1000-evidence-items", None, INVALID),
    ("deeply-nested", b"[" * 10000 + b"]" * 10000, (400, "bad-request")),
    ("utf-16", "{}".encode("utf-16"), INVALID),
    ("asserted-card-signature", None, INVALID),  # evidence the service establishes itself is never asserted
    ("asserted-derived-certificate", None, INVALID),
    ("asserted-device-key", None, INVALID),
]
CHANGES: dict[str, dict[str, Any]] = {
    "unknown-field": {"admin": True},
    "unknown-operation": {"operation": "mint_root"},
    "unknown-evidence": {"evidence": ["trust_me"]},
    "evidence-not-a-list": {"evidence": "photo_id_document"},
    "number-for-a-string": {"resident_number": 12345678},
    "1000-evidence-items": {"evidence": ["photo_id_document"] * 1000},
    "asserted-card-signature": {
        "operation": "phone_cert_issue",
        "channel": "online_sign_cert",
        "evidence": ["card_sign_certificate"],
    },
    "asserted-derived-certificate": {"evidence": ["photo_id_document", "derived_certificate"]},
    "asserted-device-key": {
        "operation": "cert_renew",
        "channel": "online_sign_cert",
        "evidence": ["card_sign_certificate", "device_generated_key"],
    },
}


@pytest.mark.parametrize(("case", "raw", "expected"), BODIES, ids=[c for c, _, _ in BODIES])
def test_hostile_json_bodies_are_refused(world: World, case: str, raw: bytes | None, expected: tuple[int, str]) -> None:
    content = raw if raw is not None else json.dumps(_proofing(world, **CHANGES[case])).encode()
    before = world.snapshot()
    response = world.call("POST", "/v1/proofing-events", "miyazaki_staff", content=content,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert (response.status_code, response.json()["type"]) == (expected[0], f"/problems/{expected[1]}"), response.text
    assert world.snapshot() == before


# -- failed authentication costs the attacker ------------------------------------------------------------
def _address(world: World, host: int) -> str:
    """One address range per backend: a worker remembers the sources it locked."""
    return f"198.51.{100 if world.api.backend == 'sqlite' else 101}.{host}"


def _stranger(world: World, host: int) -> TestClient:
    """A client from an address of its own (the lockout counts per source; the shared client's must stay open)."""
    return TestClient(world.api.client.app, client=(_address(world, host), 40000), raise_server_exceptions=False)


def test_wrong_bearer_tokens_lock_the_source_out(world: World) -> None:
    stranger, limit = _stranger(world, 20), 20
    for attempt in range(1, limit):
        wrong = stranger.get("/v1/residents/x", headers={"Authorization": f"Bearer koshin_guess{attempt}"})
        assert wrong.status_code == 401 and wrong.json()["type"] == "/problems/authentication-required"
    locked = stranger.get("/v1/residents/x", headers={"Authorization": "Bearer koshin_guess-last"})
    assert locked.status_code == 429 and locked.json()["type"] == "/problems/authentication-locked", locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 900
    right = {"Authorization": f"Bearer {world.tokens['auditor']}"}
    assert stranger.get("/v1/audit", headers=right).status_code == 429  # locked, whatever it presents
    assert _stranger(world, 21).get("/v1/audit", headers=right).status_code == 200
    records = world.api.runtime.repo.audit_records(limit=1_000_000)
    failures = [r for r in records if r.action == "auth.fail" and r.object == f"source:{_address(world, 20)}"]
    assert len(failures) == limit and {json.loads(r.details)["kind"] for r in failures} == {"bearer"}


def test_five_wrong_enrollment_secrets_burn_the_event(world: World) -> None:
    stranger, event = _stranger(world, 30), world.event("hanako")
    for attempt in range(5):
        basic = base64.b64encode(f"{event['id']}:{'z' * 25}{attempt}".encode()).decode()
        refused = stranger.post("/.well-known/est/simpleenroll", content=b"AAAA",
                                headers={"Authorization": f"Basic {basic}"})  # fmt: skip
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/tls-required"
    assert world.call("GET", f"/v1/proofing-events/{event['id']}", "auditor").json()["used"] is True
    records = world.api.runtime.repo.audit_records(limit=1_000_000)
    assert sum(1 for r in records if r.action == "auth.fail" and r.object == f"event:{event['id']}") == 5
    assert [r.details for r in records if r.action == "proofing.burn" and r.object == event["id"]]


def test_failures_from_an_unknown_source_are_audited_and_lock_nobody(world: World) -> None:
    """Behind a TLS terminator the peer is unknown: each failure is still audited, and no lockout follows."""
    rt, token = world.api.runtime, request_source.set(None)
    try:
        for _ in range(rt.settings.auth_source_limit + 2):
            failed(rt, "bearer")
        refuse_if_locked(rt)
        refuse_if_known_locked(rt)
    finally:
        request_source.reset(token)
    records = [r for r in rt.repo.audit_records(limit=1_000_000) if r.object == "source:unknown"]
    assert len(records) >= rt.settings.auth_source_limit + 2 and "unknown" not in rt.auth_locks
