"""PDF signing and validation pieces without the live service: the document-signing rule over the real
profiles, JPKI attribute decoding, chain building, and a signature made on the SoftHSM test token under a
throwaway CA whose certificates name no OCSP responder or CRL (so revocation stays unknown); signature
time-stamps from a koshin TSA that the throwaway root does not vouch for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from cryptography.x509.oid import NameOID

from ca.extensions import EKU_OIDS, CaUrls, holder_alt_names, key_usage
from ca.hierarchy import run_ceremony, signing_key
from ca.holder import Holder
from ca.profiles import load_profiles
from ca.tsa import TimeStampAuthority
from hsm import KeyAlgorithm, TokenSession
from service.pdf.attributes import DOCUMENT_SIGNING_EKU, document_signing_problems, holder_attributes
from service.pdf.chain import Chain, build_chain
from service.pdf.errors import (
    CertificateNotForSigning,
    ChainUnavailable,
    PdfUnreadable,
    SigningFailed,
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


class _TsaHandler(BaseHTTPRequestHandler):
    """RFC 3161 over HTTP in a few lines: enough for pyHanko's time-stamp client (the service's route is
    covered by tests/service/protocols/test_tsa_live.py)."""

    authority: TimeStampAuthority

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = self.authority.respond(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def tsa_url(token: TokenSession) -> Iterator[str]:
    """A koshin TSA of its own hierarchy (so not under the mini root), served on a loopback port."""
    hierarchy = load_profiles().hierarchy
    materials = run_ceremony(token, hierarchy, KeyAlgorithm.P256, CaUrls("http://127.0.0.1:9"), None,
                             label_prefix="pdf-it-tsa-")  # fmt: skip
    tsa = next(m for m in materials if m.role == "tsa")
    assert hierarchy.tsa is not None
    handler = type("Handler", (_TsaHandler,), {"authority": TimeStampAuthority(
        tsa.certificate, signing_key(token, tsa.key_label), hierarchy.tsa.policy, 1)})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()
    server.server_close()


def test_time_stamp_from_a_tsa_outside_the_trust_anchor_does_not_count(
    mini: MiniCa, token: TokenSession, token_key: tuple[str, bytes], tsa_url: str
) -> None:
    label, public = token_key
    leaf = mini.issue(public, "signature")
    request = SigningRequest(token, label, leaf, Chain((), mini.cert), tsa_url=tsa_url)
    signed = sign_pdf_bytes(sample_pdf("time-stamped"), request)
    (report,) = verify_pdf_bytes(signed, mini.cert, [])
    assert report.integrity == "intact" and report.timestamp is not None
    assert "Time-Stamp Authority" in report.timestamp.tsa and abs(
        report.timestamp.time - datetime.now(UTC)
    ) < timedelta(minutes=2)
    assert not report.timestamp.valid and "not trusted" in str(report.timestamp.problem) and not report.valid


def test_an_unreachable_tsa_fails_signing(mini: MiniCa, token: TokenSession, token_key: tuple[str, bytes]) -> None:
    label, public = token_key
    request = SigningRequest(token, label, mini.issue(public, "signature"), Chain((), mini.cert),
                             tsa_url="http://127.0.0.1:9/tsa")  # fmt: skip
    with pytest.raises(SigningFailed, match="refused to sign"):
        sign_pdf_bytes(sample_pdf(), request)
