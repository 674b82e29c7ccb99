"""Bad input gets a clear, typed error and leaves no certificate behind."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.errors import CaError, CsrInvalid, LintFailed, ProfileNotFound, ProfileViolation
from ca.issuance import CertificateAuthority, IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel, load_profiles
from tests.support.pki_world import HOLDER, URLS, Pki

NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])


def _software_csr(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, ca: bool = False) -> bytes:
    """A holder-side test key; never a CA key, never written outside the test's memory."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(NAME)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def _issued_count(pki: Pki) -> int:
    return len(pki.repo.certificates())


def _issue_raw(pki: Pki, csr_bytes: bytes, profile: str = "signature") -> None:
    pki.issue(IssueRequest(profile, load_csr(csr_bytes), HOLDER, AssuranceLevel.IAL3))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n", "malformed"),
        (b"\x30\x82\x01", "malformed"),
        (b"", "malformed"),
    ],
)
def test_malformed_csr(pki: Pki, data: bytes, message: str) -> None:
    before = _issued_count(pki)
    with pytest.raises(CsrInvalid, match=message):
        _issue_raw(pki, data)
    assert _issued_count(pki) == before


def test_csr_signature_that_does_not_verify(pki: Pki) -> None:
    der = bytearray(_software_csr(ec.generate_private_key(ec.SECP256R1())))
    der[-1] ^= 0x01
    before = _issued_count(pki)
    with pytest.raises(CsrInvalid, match="proof of possession"):
        _issue_raw(pki, bytes(der))
    assert _issued_count(pki) == before


def test_rsa_1024_is_refused(pki: Pki) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    before = _issued_count(pki)
    with pytest.raises(CsrInvalid, match="1024 bits is too small"):
        _issue_raw(pki, _software_csr(weak))
    assert _issued_count(pki) == before


def test_csr_asking_for_ca_is_refused(pki: Pki) -> None:
    before = _issued_count(pki)
    with pytest.raises(CsrInvalid, match="CA:TRUE"):
        _issue_raw(pki, _software_csr(ec.generate_private_key(ec.SECP256R1()), ca=True))
    assert _issued_count(pki) == before


def test_unknown_profile(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    before = _issued_count(pki)
    with pytest.raises(ProfileNotFound):
        pki.issue(IssueRequest("tls-server", holder_csr, HOLDER, AssuranceLevel.IAL3))
    assert _issued_count(pki) == before


def test_signature_certificate_refused_to_under_15(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    child = HOLDER.model_copy(update={"date_of_birth": HOLDER.date_of_birth.replace(year=2015)})
    before = _issued_count(pki)
    with pytest.raises(ProfileViolation, match="under 15"):
        pki.issue(IssueRequest("signature", holder_csr, child, AssuranceLevel.IAL3))
    pki.issue(IssueRequest("user-authentication", holder_csr, child, AssuranceLevel.IAL3))
    assert _issued_count(pki) == before + 1


def test_lint_failure_refuses_before_the_token_signs(
    pki: Pki, holder_csr: x509.CertificateSigningRequest, tmp_path: Path
) -> None:
    """A profile that puts the address in a locality name: pkilint refuses a value over ub-locality-name."""
    base = tmp_path / "profiles"
    shutil.copytree(Path(str(resources.files("profiles"))), base)
    path = base / "certificate" / "signature.yaml"
    path.write_text(
        path.read_text().replace(
            "  - {attribute: CN, source: issuance_id}",
            "  - {attribute: L, source: address}\n  - {attribute: CN, source: issuance_id}",
        )
    )
    authority = CertificateAuthority(load_profiles(base), pki.authority.issuers, URLS, pki.authority.linter)
    long_address = HOLDER.model_copy(update={"address": "東京都千代田区" + "一" * 150})
    before = _issued_count(pki)
    with pytest.raises(LintFailed) as caught:
        authority.prepare(IssueRequest("signature", holder_csr, long_address, AssuranceLevel.IAL3))
    assert any("localityName" in f or "X520LocalityName" in f or "rdnSequence" in f for f in caught.value.findings)
    assert _issued_count(pki) == before
    assert isinstance(caught.value, CaError)
