"""The CA core without a token: prepare (profile, validity, extensions, pre-issuance lint) and sign once, with
the issuing CA's key a software key behind the same signer seam the token uses (tests/support/ocsp.FakeSigner)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca.errors import IssuanceRefused, ProfileViolation
from ca.extensions import CaUrls
from ca.holder import Holder
from ca.issuance import CertificateAuthority, IssueRequest, IssuingCa
from ca.lint import PkixLinter
from ca.profiles import AssuranceLevel, load_profiles
from ca.signing import SigningKey
from hsm import KeyAlgorithm
from tests.support.ocsp import FakeSigner

HOLDER = Holder(name="宮崎 花子", address="宮崎県宮崎市橘通西一丁目1番1号", prefecture="宮崎県", municipality="宮崎市",
                date_of_birth=date(1988, 4, 12), sex="2", card_expires=date(2031, 4, 12))  # fmt: skip


def _issuing(name: str, signing: SigningKey) -> IssuingCa:
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"Test {name} CA")])  # fmt: skip
    public = signing.key.public_key()
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(public)
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(signing.key, hashes.SHA256())
    )  # fmt: skip
    return IssuingCa(name, certificate, signing)


@pytest.fixture(scope="module")
def authority() -> tuple[CertificateAuthority, FakeSigner]:
    signer = FakeSigner()
    issuers = {name: _issuing(name, signer.signing_key(name, KeyAlgorithm.P256))
               for name in ("signature", "user-authentication")}  # fmt: skip
    return CertificateAuthority(load_profiles(), issuers, CaUrls("http://127.0.0.1:8000"), PkixLinter()), signer


@pytest.mark.parametrize("profile", ["signature", "user-authentication"])
def test_prepare_lints_and_sign_signs_once_through_the_seam(
    authority: tuple[CertificateAuthority, FakeSigner], profile: str
) -> None:
    ca, signer = authority
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    before = len(signer.signed)
    prepared = ca.prepare(IssueRequest(profile, None, HOLDER, AssuranceLevel.IAL3, requested_key=key))
    assert prepared.intent.linted and len(signer.signed) == before  # the lint copy is throwaway-signed
    certificate = ca.sign(prepared)
    assert len(signer.signed) == before + 1 and signer.signed[-1][0] == profile
    certificate.verify_directly_issued_by(ca.issuers[profile].certificate)
    assert certificate.public_key() == key
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {o.type_id.dotted_string for o in san.get_values_for_type(x509.OtherName)}
    except x509.ExtensionNotFound:
        names = set()
    assert ("1.2.392.200149.8.5.5.1" in names) is (profile == "signature")  # personal data on signature only
    with pytest.raises(IssuanceRefused):
        ca.sign(prepared)  # a prepared certificate signs once


def test_a_signature_certificate_for_a_minor_is_refused(authority: tuple[CertificateAuthority, FakeSigner]) -> None:
    ca, signer = authority
    child = HOLDER.model_copy(update={"date_of_birth": date.today().replace(year=date.today().year - 10)})
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    before = len(signer.signed)
    with pytest.raises(ProfileViolation):
        ca.prepare(IssueRequest("signature", None, child, AssuranceLevel.IAL3, requested_key=key))
    assert len(signer.signed) == before
