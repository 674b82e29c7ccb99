"""PDF signing and validation pieces without the live service: the document-signing rule over the real
profiles, JPKI attribute decoding, chain building, and a signature made on the SoftHSM test token under a
throwaway CA whose certificates name no OCSP responder or CRL (so revocation stays unknown)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from cryptography.x509.oid import NameOID

from ca.extensions import EKU_OIDS, holder_alt_names, key_usage
from ca.holder import Holder
from ca.profiles import load_profiles
from hsm import KeyAlgorithm, TokenSession
from service.pdf.attributes import DOCUMENT_SIGNING_EKU, document_signing_problems, holder_attributes
from service.pdf.chain import Chain, build_chain
from service.pdf.errors import (
    CertificateNotForSigning,
    ChainUnavailable,
    PdfUnreadable,
    SigningKeyMismatch,
)
from service.pdf.sample import sample_pdf
from service.pdf.signing import SigningRequest, sign_pdf_bytes
from service.pdf.verification import verify_pdf_bytes

HOLDER = Holder(name="宮崎 花子", address="宮崎県宮崎市橘通西一丁目1番1号", prefecture="宮崎県",
                municipality="宮崎市", date_of_birth=date(2019, 5, 1), sex="2")  # fmt: skip
NOW = datetime.now(UTC)
pytestmark = pytest.mark.hsm


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class MiniCa:
    """A software root issuing holder certificates shaped by a koshin profile (no CRL DP, no AIA)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder().subject_name(_name("mini root")).issuer_name(_name("mini root"))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(key_usage((), ca=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def issue(
        self, public_der: bytes, profile_name: str, *, eku: list[x509.ObjectIdentifier] | None = None
    ) -> x509.Certificate:
        profile = load_profiles().profile(profile_name)
        public = load_der_public_key(public_der)
        assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        builder = (
            x509.CertificateBuilder().subject_name(_name(profile_name)).issuer_name(self.cert.subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(hours=1)).not_valid_after(NOW + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(profile.key_usage), critical=True)
        )  # fmt: skip
        san = holder_alt_names(profile, HOLDER, NOW)
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        usages = eku if eku is not None else [EKU_OIDS[e] for e in profile.extended_key_usage]
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(self.key, hashes.SHA256())


@pytest.fixture(scope="module")
def mini() -> MiniCa:
    return MiniCa()


@pytest.fixture(scope="module")
def token_key(token: TokenSession) -> tuple[str, bytes]:
    label = "pdf-it-p256"
    if not token.has_key(label):
        token.generate_keypair(KeyAlgorithm.P256, label)
    return label, token.public_key_der(label)


def test_profiles_decide_who_may_sign_documents(mini: MiniCa, token_key: tuple[str, bytes]) -> None:
    _, public = token_key
    assert document_signing_problems(mini.issue(public, "signature")) == []
    assert document_signing_problems(mini.issue(public, "user-authentication")) == [
        "keyUsage lacks nonRepudiation", "extendedKeyUsage limits it to clientAuth"]  # fmt: skip
    assert document_signing_problems(mini.issue(public, "signature", eku=[DOCUMENT_SIGNING_EKU])) == []
    assert document_signing_problems(mini.issue(public, "signature", eku=[EKU_OIDS["client_auth"]])) != []


def test_jpki_attributes_decode(mini: MiniCa, token_key: tuple[str, bytes]) -> None:
    attributes = holder_attributes(mini.issue(token_key[1], "signature"))
    assert (attributes.name, attributes.sex, attributes.date_of_birth) == ("宮崎 花子", "2", "520190501")
    assert attributes.birth_date == date(2019, 5, 1) and attributes.birth_text is not None
    assert "Reiwa" in attributes.birth_text and attributes.sex_text == "2 (female)"
    assert holder_attributes(mini.issue(token_key[1], "user-authentication")).as_dict()["name"] is None
    odd = x509.SubjectAlternativeName([x509.OtherName(x509.ObjectIdentifier("1.2.392.200149.8.5.5.4"),
                                                      UTF8String("719991301").dump())])  # fmt: skip
    cert = (x509.CertificateBuilder().subject_name(_name("odd")).issuer_name(mini.cert.subject)
            .public_key(mini.key.public_key()).serial_number(1).not_valid_before(NOW).not_valid_after(NOW)
            .add_extension(odd, critical=False).sign(mini.key, hashes.SHA256()))  # fmt: skip
    assert holder_attributes(cert).birth_date is None
    assert holder_attributes(cert).birth_text == "719991301 (not a JPKI date of birth)"


def test_chain_building(mini: MiniCa, token_key: tuple[str, bytes]) -> None:
    leaf = mini.issue(token_key[1], "signature")
    assert build_chain(leaf, [mini.cert]) == Chain((), mini.cert)
    with pytest.raises(ChainUnavailable, match="no chain"):
        build_chain(leaf, [])
    with pytest.raises(ChainUnavailable, match="not the given root"):
        build_chain(leaf, [mini.cert], root=MiniCa().cert)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_token_signature_is_intact_but_revocation_unknown_without_sources(
    mini: MiniCa, token: TokenSession, algorithm: KeyAlgorithm
) -> None:
    label = f"pdf-it-{algorithm}"
    if not token.has_key(label):
        token.generate_keypair(algorithm, label)
    leaf = mini.issue(token.public_key_der(label), "signature")
    signed = sign_pdf_bytes(
        sample_pdf("no revocation sources"), SigningRequest(token, label, leaf, Chain((), mini.cert))
    )
    (report,) = verify_pdf_bytes(signed, mini.cert, [])
    assert report.integrity == "intact" and report.attributes.name == "宮崎 花子"
    assert report.revocation == "unknown" and not report.valid


def test_refusals_come_before_signing(mini: MiniCa, token: TokenSession, token_key: tuple[str, bytes]) -> None:
    label, public = token_key
    pdf = sample_pdf()
    auth = mini.issue(public, "user-authentication")
    with pytest.raises(CertificateNotForSigning, match="may not sign documents"):
        sign_pdf_bytes(pdf, SigningRequest(token, label, auth, Chain((), mini.cert)))
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    other = mini.issue(stranger.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), "signature")
    with pytest.raises(SigningKeyMismatch):
        sign_pdf_bytes(pdf, SigningRequest(token, label, other, Chain((), mini.cert)))
    with pytest.raises(PdfUnreadable, match="no signature"):
        verify_pdf_bytes(pdf, mini.cert, [])
    with pytest.raises(PdfUnreadable):
        verify_pdf_bytes(b"not a pdf", mini.cert, [])
