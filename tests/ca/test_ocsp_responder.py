"""The OCSP responder core without a token: software keys behind the same key seam (a fake TokenSigner)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ca.errors import OcspConfigurationError
from ca.ocsp import CertStatusKind, OcspIssuer, OcspResponder, StatusAnswer, cert_id_hashes, ocsp_request_der
from hsm import KeyAlgorithm
from tests.support.ocsp import NOW, Setup, _setup


@pytest.fixture(scope="module", params=[KeyAlgorithm.RSA2048, KeyAlgorithm.P256, KeyAlgorithm.P384], ids=str)
def setup(request: pytest.FixtureRequest) -> Setup:
    return _setup(request.param)


def _basic(der: bytes) -> ocsp.OCSPResponse:
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return response


def _signature_ok(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    public = cert.public_key()
    assert response.signature_hash_algorithm is not None
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
            )
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    except Exception:
        return False
    return True


# SHA-1 CertIDs are what openssl ocsp sends by default (RFC 5019), so the responder must match them.
CERT_ID_HASHES = [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()]  # noqa: S303


@pytest.mark.parametrize("algorithm", CERT_ID_HASHES, ids=lambda h: h.name)
def test_cert_id_hashes_match_cryptography(setup: Setup, algorithm: hashes.HashAlgorithm) -> None:
    request = ocsp.load_der_ocsp_request(ocsp_request_der(setup.leaf, setup.ca, algorithm=algorithm))
    assert cert_id_hashes(setup.ca, algorithm.name) == (request.issuer_name_hash, request.issuer_key_hash)


def test_good_answer_is_signed_through_the_seam(setup: Setup) -> None:
    seen: list[tuple[str, int]] = []

    def lookup(name: str, serial: int) -> StatusAnswer:
        seen.append((name, serial))
        return StatusAnswer(CertStatusKind.GOOD)

    setup.signer.signed.clear()
    request_der = ocsp_request_der(setup.leaf, setup.ca)
    response = _basic(OcspResponder([setup.issuer], lookup, timedelta(minutes=30)).respond(request_der, NOW))
    assert seen == [("signature", setup.leaf.serial_number)]
    assert [label for label, _ in setup.signer.signed] == ["ocsp"]
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == setup.leaf.serial_number
    assert isinstance(response.hash_algorithm, hashes.SHA1)
    assert response.this_update_utc == NOW and response.next_update_utc == NOW + timedelta(minutes=30)
    assert response.produced_at_utc is not None
    assert response.responder_name is None
    assert response.responder_key_hash == cert_id_hashes(setup.responder_cert, "sha1")[1]
    assert response.certificates == [setup.responder_cert]
    assert _signature_ok(response, setup.responder_cert)
    assert not _signature_ok(response, setup.ca)
    expected = hashes.SHA384 if setup.issuer.responder_key.algorithm is KeyAlgorithm.P384 else hashes.SHA256
    assert isinstance(response.signature_hash_algorithm, expected)
    request = ocsp.load_der_ocsp_request(request_der)
    assert (
        response.extensions.get_extension_for_class(x509.OCSPNonce).value
        == request.extensions.get_extension_for_class(x509.OCSPNonce).value
    )


def test_revoked_answer_carries_time_and_reason(setup: Setup) -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 678901)  # naive: UTC; the fraction is dropped
    answer = StatusAnswer(CertStatusKind.REVOKED, at, x509.ReasonFlags.key_compromise)
    response = _basic(setup.responder(lambda _n, _s: answer).respond(ocsp_request_der(setup.leaf, setup.ca), NOW))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    unspecified = StatusAnswer(CertStatusKind.REVOKED, at, x509.ReasonFlags.unspecified)
    response = _basic(setup.responder(lambda _n, _s: unspecified).respond(ocsp_request_der(setup.leaf, setup.ca), NOW))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED and response.revocation_reason is None


def test_unknown_answer_and_sha256_cert_id(setup: Setup) -> None:
    answer = StatusAnswer(CertStatusKind.UNKNOWN)
    request_der = ocsp_request_der(setup.leaf, setup.ca, nonce=False, algorithm=hashes.SHA256())
    response = _basic(setup.responder(lambda _n, _s: answer).respond(request_der, NOW))
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    assert response.issuer_key_hash == cert_id_hashes(setup.ca, "sha256")[1]
    assert len(response.extensions) == 0


def _multi_request(single: bytes) -> bytes:
    request = asn1_ocsp.OCSPRequest.load(single)
    entry = request["tbs_request"]["request_list"][0]
    multi: bytes = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [entry.copy(), entry.copy()]}}).dump()
    return multi


def test_malformed_requests(setup: Setup) -> None:
    setup.signer.signed.clear()
    good = ocsp_request_der(setup.leaf, setup.ca)
    for bad in (b"", b"\x30\x00", b"not DER at all", good[:-3], good + b"\x00", _multi_request(good)):
        response = ocsp.load_der_ocsp_response(setup.responder().respond(bad, NOW))
        assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST, bad
    multi = _multi_request(good)
    assert len(asn1_ocsp.OCSPRequest.load(multi)["tbs_request"]["request_list"]) == 2  # well-formed RFC 6960
    with pytest.raises(NotImplementedError, match="more than one"):
        ocsp.load_der_ocsp_request(multi)
    assert setup.signer.signed == []


def test_foreign_issuer_is_unauthorized(setup: Setup) -> None:
    setup.signer.signed.clear()
    response = setup.responder().respond(ocsp_request_der(setup.foreign_leaf, setup.foreign_ca), NOW)
    assert ocsp.load_der_ocsp_response(response).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert setup.signer.signed == []


def test_failing_lookup_is_an_internal_error(setup: Setup) -> None:
    def lookup(_name: str, _serial: int) -> StatusAnswer:
        raise RuntimeError("database unavailable")

    response = setup.responder(lookup).respond(ocsp_request_der(setup.leaf, setup.ca), NOW)
    assert ocsp.load_der_ocsp_response(response).response_status is ocsp.OCSPResponseStatus.INTERNAL_ERROR


def test_nonces_outside_rfc_8954_are_malformed_requests(setup: Setup) -> None:
    for size, echoed in ((1, True), (32, True), (33, False), (0, False), (1000, False)):
        request_der = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(setup.leaf, setup.ca, hashes.SHA1())  # noqa: S303
            .add_extension(x509.OCSPNonce(b"n" * size), critical=False)
            .build()
            .public_bytes(Encoding.DER)
        )
        answer = ocsp.load_der_ocsp_response(setup.responder().respond(request_der, NOW))
        if not echoed:
            assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST, size
            continue
        response = _basic(setup.responder().respond(request_der, NOW))
        assert [e.value for e in response.extensions if isinstance(e.value, x509.OCSPNonce)] == [
            x509.OCSPNonce(b"n" * size)
        ], size


def test_status_answer_invariants() -> None:
    with pytest.raises(ValueError, match="needs revoked_at"):
        StatusAnswer(CertStatusKind.REVOKED)
    with pytest.raises(ValueError, match="no revocation time"):
        StatusAnswer(CertStatusKind.GOOD, NOW)
    with pytest.raises(ValueError, match="no revocation time"):
        StatusAnswer(CertStatusKind.UNKNOWN, reason=x509.ReasonFlags.superseded)


def test_inconsistent_issuers_are_refused() -> None:
    s = _setup(KeyAlgorithm.P256)
    good = lambda _n, _s: StatusAnswer(CertStatusKind.GOOD)  # noqa: E731
    foreign = OcspIssuer("x", s.foreign_ca, s.responder_cert, s.issuer.responder_key)
    with pytest.raises(OcspConfigurationError, match="not issued by the CA"):
        OcspResponder([foreign], good)
    other_key = s.signer.signing_key("other", KeyAlgorithm.P256)
    with pytest.raises(OcspConfigurationError, match="does not match"):
        OcspResponder([OcspIssuer("x", s.ca, s.responder_cert, other_key)], good)
    with pytest.raises(OcspConfigurationError, match="OCSPSigning"):
        OcspResponder([OcspIssuer("x", s.ca, s.leaf, s.issuer.responder_key)], good)
    with pytest.raises(OcspConfigurationError, match="duplicate"):
        OcspResponder([s.issuer, s.issuer], good)
    with pytest.raises(OcspConfigurationError, match="positive"):
        OcspResponder([s.issuer], good, timedelta(0))


# -- pre-signed answers (RFC 5019): the signature saved, never the status look-up --------------------------------


def _counting(setup: Setup, status: dict[int, StatusAnswer]) -> tuple[OcspResponder, list[Any], list[int]]:
    looked_up: list[int] = []

    def lookup(_issuer: str, serial: int) -> StatusAnswer:
        looked_up.append(serial)
        return status.get(serial, StatusAnswer(CertStatusKind.GOOD))

    setup.signer.signed.clear()
    return setup.responder(lookup), setup.signer.signed, looked_up


def test_a_nonce_less_request_is_answered_pre_signed_in_the_first_half_of_the_validity(setup: Setup) -> None:
    responder, signed, looked_up = _counting(setup, {})
    request = ocsp_request_der(setup.leaf, setup.ca, nonce=False)
    first = responder.answer(request, NOW)
    assert not first.cached and first.this_update == NOW and first.next_update == NOW + timedelta(hours=1)
    again = responder.answer(request, NOW + timedelta(minutes=29))
    assert again.cached and again.der == first.der
    assert len(signed) == 1 and len(looked_up) == 2  # the status was read both times
    later = responder.answer(request, NOW + timedelta(minutes=31))  # past half the validity: signed again
    assert not later.cached and later.der != first.der and len(signed) == 2
    assert responder.answer(request, NOW - timedelta(minutes=1)).cached is False  # never one from the future


def test_a_request_with_a_nonce_is_always_signed_afresh(setup: Setup) -> None:
    responder, signed, _ = _counting(setup, {})
    request = ocsp_request_der(setup.leaf, setup.ca, nonce=True)
    assert not responder.answer(request, NOW).cached
    assert not responder.answer(request, NOW).cached
    assert len(signed) == 2


def test_a_status_change_is_answered_at_once_without_telling_the_responder(setup: Setup) -> None:
    """What makes the pre-signed answers safe across workers and nodes: nothing needs invalidating, because
    each request reads the status from the store and a different status never matches the kept response."""
    status: dict[int, StatusAnswer] = {}
    responder, signed, _ = _counting(setup, status)
    request = ocsp_request_der(setup.leaf, setup.ca, nonce=False)
    good = ocsp.load_der_ocsp_response(responder.respond(request, NOW))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    status[setup.leaf.serial_number] = StatusAnswer(CertStatusKind.REVOKED, revoked_at=NOW)  # another node's write
    revoked = responder.answer(request, NOW + timedelta(seconds=1))
    assert not revoked.cached
    assert ocsp.load_der_ocsp_response(revoked.der).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert responder.answer(request, NOW + timedelta(seconds=2)).cached  # and the revoked one is kept in turn
    assert len(signed) == 2


def test_the_pre_signed_answers_are_bounded(setup: Setup) -> None:
    responder = OcspResponder([setup.issuer], lambda _name, _serial: StatusAnswer(CertStatusKind.GOOD),
                              cache_entries=2)  # fmt: skip
    requests = [ocsp_request_der(setup.leaf, setup.ca, nonce=False, algorithm=h) for h in CERT_ID_HASHES[:3]]
    for request in requests:
        responder.answer(request, NOW)
    assert responder.answer(requests[2], NOW).cached
    assert not responder.answer(requests[0], NOW).cached  # the oldest was dropped for the third


def test_used_answers_are_signed_ahead_and_unused_ones_dropped(setup: Setup) -> None:
    status: dict[int, StatusAnswer] = {}
    responder, signed, looked_up = _counting(setup, status)
    used = ocsp_request_der(setup.leaf, setup.ca, nonce=False)
    unused = ocsp_request_der(setup.leaf, setup.ca, nonce=False, algorithm=hashes.SHA256())
    responder.answer(used, NOW)
    responder.answer(unused, NOW)
    assert responder.answer(used, NOW + timedelta(minutes=10)).cached  # a relying party came back for it
    assert responder.refresh(NOW + timedelta(minutes=20)) == 0  # nothing due within five minutes yet
    status[setup.leaf.serial_number] = StatusAnswer(CertStatusKind.REVOKED, revoked_at=NOW)
    before = len(looked_up)
    assert responder.refresh(NOW + timedelta(minutes=26)) == 1 and len(signed) == 3
    assert len(looked_up) == before + 1  # the status is read again for the one signed ahead
    ahead = responder.answer(used, NOW + timedelta(minutes=31))  # past the old half-life: the new one, no wait
    assert ahead.cached and ahead.this_update == NOW + timedelta(minutes=26)
    assert ocsp.load_der_ocsp_response(ahead.der).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert not responder.answer(unused, NOW + timedelta(minutes=31)).cached  # dropped, signed on demand again
