"""OCSP answers signed on the token by each issuing CA's delegated responder, checked by ``openssl ocsp``.

Two openssl invocations are used, because openssl 3.0 ignores ``-reqin`` once ``-cert``/``-serial`` is given:

- ``openssl ocsp -reqin req.der -respin resp.der -CAfile root.pem -verify_other issuing.pem -resp_text``
  verifies the signature, the responder's chain to the root and its delegation (EKU OCSPSigning, issued by the
  CertID's issuer), checks the nonce against the request, and prints the response ("Cert Status: ...");
- ``openssl ocsp -respin resp.der -CAfile root.pem -verify_other issuing.pem -issuer <issuing CA>
  -serial 0x<serial> -no_nonce`` does the same verification and prints the status summary line
  ("0x<serial>: good|revoked|unknown", "Reason: keyCompromise"), finding the answer by the CertID openssl
  computes itself.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.crl import reason_flag
from ca.hierarchy import signing_key
from ca.issuance import IssueRequest
from ca.keyseam import TokenECPrivateKey, TokenRSAPrivateKey, signature_hash
from ca.ocsp import (
    CertStatusKind,
    OcspIssuer,
    OcspResponder,
    StatusAnswer,
    StatusLookup,
    cert_id_hashes,
    ocsp_request_der,
)
from ca.profiles import AssuranceLevel
from ca.signing import throwaway_key
from hsm import KeyAlgorithm, TokenSession
from service.db.repository import Repository, utc
from service.errors import CertificateNotFound
from tests.support.helpers import openssl, run, write_pem
from tests.support.pki_world import HOLDER, Pki

ISSUING = ("signature", "user-authentication")


def repo_lookup(repo: Repository) -> StatusLookup:
    """The store's view: issued → GOOD, revoked → REVOKED, absent, pending, failed or another CA's → UNKNOWN."""

    def lookup(issuer: str, serial: int) -> StatusAnswer:
        try:
            record = repo.certificate(serial)
        except CertificateNotFound:
            return StatusAnswer(CertStatusKind.UNKNOWN)
        if record.issuer != issuer:
            return StatusAnswer(CertStatusKind.UNKNOWN)
        if record.status == "issued":
            return StatusAnswer(CertStatusKind.GOOD)
        if record.status == "revoked":
            reason = reason_flag(record.revocation_reason or "unspecified")
            return StatusAnswer(CertStatusKind.REVOKED, utc(record.revoked_at or record.created_at), reason)
        return StatusAnswer(CertStatusKind.UNKNOWN)

    return lookup


@dataclass
class Ocsp:
    pki: Pki
    issuers: dict[str, OcspIssuer]
    responder: OcspResponder


@pytest.fixture(scope="module")
def ocsp_pki(pki: Pki, token: TokenSession) -> Ocsp:
    issuers = {
        name: OcspIssuer(
            name,
            pki.material(name, "issuing").certificate,
            pki.material(name, "ocsp").certificate,
            signing_key(token, pki.material(name, "ocsp").key_label),
        )
        for name in ISSUING
    }
    return Ocsp(pki, issuers, OcspResponder(list(issuers.values()), repo_lookup(pki.repo)))


def _issue(pki: Pki, csr: x509.CertificateSigningRequest, profile: str) -> x509.Certificate:
    return pki.issue(IssueRequest(profile, csr, HOLDER, AssuranceLevel.IAL3)).certificate


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def openssl_ocsp_verify(req: Path, resp: Path, pki: Pki) -> subprocess.CompletedProcess[str]:
    """Signature, chain to the root, delegation and nonce; prints the whole response."""
    args = ["-reqin", str(req), "-respin", str(resp), "-CAfile", str(pki.chain_pem)]
    return run([openssl(), "ocsp", *args, "-verify_other", str(pki.untrusted_pem), "-resp_text"])


def openssl_ocsp_status(resp: Path, issuer: Path, serial: int, pki: Pki) -> subprocess.CompletedProcess[str]:
    """The same verification, then openssl's own CertID for (issuer, serial) and its status summary."""
    args = ["-respin", str(resp), "-CAfile", str(pki.chain_pem), "-verify_other", str(pki.untrusted_pem)]
    return run([openssl(), "ocsp", *args, "-issuer", str(issuer), "-serial", f"0x{serial:x}", "-no_nonce"])


def _request_by_serial(issuer: x509.Certificate, serial: int) -> bytes:
    name_hash, key_hash = cert_id_hashes(issuer, "sha1")
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())  # noqa: S303
    builder = builder.add_extension(x509.OCSPNonce(b"\x5a" * 32), critical=False)
    return builder.build().public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    ("case", "profile"), [("good", "user-authentication"), ("revoked", "signature"), ("unknown", "signature")]
)
def test_status_verified_by_openssl(
    ocsp_pki: Ocsp, holder_csr: x509.CertificateSigningRequest, tmp_path: Path, case: str, profile: str
) -> None:
    pki = ocsp_pki.pki
    issuer = pki.material(profile, "issuing").certificate
    if case == "unknown":
        serial = x509.random_serial_number()
        request_der = _request_by_serial(issuer, serial)
    else:
        cert = _issue(pki, holder_csr, profile)
        serial = cert.serial_number
        if case == "revoked":
            pki.repo.revoke(serial, "keyCompromise", datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))
        request_der = ocsp_request_der(cert, issuer)
    req = _write(tmp_path / "req.der", request_der)
    resp = _write(tmp_path / "resp.der", ocsp_pki.responder.respond(request_der))

    verified = openssl_ocsp_verify(req, resp, pki)
    text = _output(verified)
    assert verified.returncode == 0, text
    assert "Response verify OK" in text
    assert "Nonce Verify error" not in text and "no nonce in response" not in text
    assert f"Cert Status: {case}" in text
    if case == "revoked":
        assert "Revocation Reason: keyCompromise (0x1)" in text

    status = openssl_ocsp_status(resp, write_pem(tmp_path / "issuer.pem", issuer), serial, pki)
    summary = _output(status)
    assert status.returncode == 0, summary
    assert "Response verify OK" in summary and "Status times invalid" not in summary
    assert f"0x{serial:x}: {case}\n" in summary
    assert ("Reason: keyCompromise" in summary) is (case == "revoked")


def test_nonce_is_echoed_and_checked_by_openssl(
    ocsp_pki: Ocsp, holder_csr: x509.CertificateSigningRequest, tmp_path: Path
) -> None:
    pki, responder = ocsp_pki.pki, ocsp_pki.responder
    cert = _issue(pki, holder_csr, "signature")
    issuer = pki.material("signature", "issuing").certificate
    first, second = ocsp_request_der(cert, issuer), ocsp_request_der(cert, issuer)
    response_der = responder.respond(first)
    nonce = ocsp.load_der_ocsp_request(first).extensions.get_extension_for_class(x509.OCSPNonce).value
    assert len(nonce.nonce) == 32
    response = ocsp.load_der_ocsp_response(response_der)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value == nonce

    resp = _write(tmp_path / "resp.der", response_der)
    mismatched = openssl_ocsp_verify(_write(tmp_path / "other.der", second), resp, pki)
    assert mismatched.returncode != 0 and "Nonce Verify error" in _output(mismatched)

    plain = ocsp.load_der_ocsp_response(responder.respond(ocsp_request_der(cert, issuer, nonce=False)))
    assert plain.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL and len(plain.extensions) == 0


def test_malformed_requests(ocsp_pki: Ocsp, holder_csr: x509.CertificateSigningRequest, tmp_path: Path) -> None:
    pki = ocsp_pki.pki
    one, two = _issue(pki, holder_csr, "signature"), _issue(pki, holder_csr, "signature")
    issuer = write_pem(tmp_path / "issuer.pem", pki.material("signature", "issuing").certificate)
    multi = tmp_path / "multi.der"
    certs = ["-cert", str(write_pem(tmp_path / "1.pem", one)), "-cert", str(write_pem(tmp_path / "2.pem", two))]
    made = run([openssl(), "ocsp", "-issuer", str(issuer), *certs, "-reqout", str(multi)])
    assert made.returncode == 0, _output(made)
    for request_der in (b"", b"\x30\x03\x02\x01\x00", b"GET /ocsp HTTP/1.1\r\n", multi.read_bytes()):
        response = ocsp.load_der_ocsp_response(ocsp_pki.responder.respond(request_der))
        assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_foreign_issuer_is_unauthorized(ocsp_pki: Ocsp) -> None:
    pki = ocsp_pki.pki
    root = pki.material("root", "root").certificate
    issuing = pki.material("signature", "issuing").certificate
    # The root issues no end-entity certificates and has no responder here.
    answer = ocsp.load_der_ocsp_response(ocsp_pki.responder.respond(ocsp_request_der(issuing, root)))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # A look-alike CA: the same subject (issuerNameHash matches), another key (issuerKeyHash does not).
    fake_key = throwaway_key(KeyAlgorithm.P256)
    now = datetime.now(UTC)
    fake_ca = (
        x509.CertificateBuilder()
        .subject_name(issuing.subject)
        .issuer_name(issuing.subject)
        .public_key(fake_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(fake_key, hashes.SHA256())
    )
    request_der = _request_by_serial(fake_ca, x509.random_serial_number())
    assert ocsp.load_der_ocsp_request(request_der).issuer_name_hash == cert_id_hashes(issuing, "sha1")[0]
    answer = ocsp.load_der_ocsp_response(ocsp_pki.responder.respond(request_der))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_signature_and_responder_chain(ocsp_pki: Ocsp, holder_csr: x509.CertificateSigningRequest) -> None:
    pki = ocsp_pki.pki
    root = pki.material("root", "root").certificate
    for name in ISSUING:
        issuer = ocsp_pki.issuers[name]
        assert isinstance(issuer.responder_key.key, TokenRSAPrivateKey | TokenECPrivateKey)
        cert = _issue(pki, holder_csr, name)
        request_der = ocsp_request_der(cert, issuer.ca_certificate)
        response = ocsp.load_der_ocsp_response(ocsp_pki.responder.respond(request_der))
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert response.certificates == [issuer.responder_certificate]
        assert response.responder_name is None
        assert response.responder_key_hash == cert_id_hashes(issuer.responder_certificate, "sha1")[1]
        expected_hash = signature_hash(pki.algorithm)
        assert isinstance(response.signature_hash_algorithm, type(expected_hash))

        public = issuer.responder_certificate.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), expected_hash)
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(expected_hash))

        responder_cert = issuer.responder_certificate
        responder_cert.verify_directly_issued_by(issuer.ca_certificate)
        issuer.ca_certificate.verify_directly_issued_by(root)
        usages = responder_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.OCSP_SIGNING in usages
        assert responder_cert.extensions.get_extension_for_class(x509.OCSPNoCheck).critical is False


def test_openssl_refuses_a_responder_of_another_ca(
    ocsp_pki: Ocsp, holder_csr: x509.CertificateSigningRequest, tmp_path: Path
) -> None:
    """The openssl check is not vacuous: the other CA's responder, although it chains to the root, is refused."""
    pki = ocsp_pki.pki
    cert = _issue(pki, holder_csr, "signature")
    issuer = pki.material("signature", "issuing").certificate
    wrong = ocsp_pki.issuers["user-authentication"]
    now = datetime.now(UTC).replace(microsecond=0)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(cert, issuer, hashes.SHA1(), ocsp.OCSPCertStatus.GOOD, now, now + timedelta(hours=1), None, None)  # noqa: S303
        .responder_id(ocsp.OCSPResponderEncoding.HASH, wrong.responder_certificate)
        .certificates([wrong.responder_certificate])
        .sign(wrong.responder_key.key, signature_hash(wrong.responder_key.algorithm))
    )
    req = _write(tmp_path / "req.der", ocsp_request_der(cert, issuer, nonce=False))
    resp = _write(tmp_path / "resp.der", response.public_bytes(Encoding.DER))
    result = openssl_ocsp_verify(req, resp, pki)
    assert result.returncode != 0 and "Response verify OK" not in _output(result)
