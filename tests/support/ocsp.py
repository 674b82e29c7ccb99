"""An OCSP responder set-up with software keys: a CA, its delegated responder, a leaf, and a foreign CA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.keyseam import token_private_key
from ca.ocsp import (
    CertStatusKind,
    OcspIssuer,
    OcspResponder,
    StatusAnswer,
)
from ca.signing import SigningKey, ThrowawayKey, throwaway_key
from hsm import KeyAlgorithm, SignatureScheme

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


@dataclass
class FakeSigner:
    """A TokenSigner over software keys, counting the signatures it makes."""

    keys: dict[str, tuple[KeyAlgorithm, ThrowawayKey]] = field(default_factory=dict)
    signed: list[tuple[str, SignatureScheme]] = field(default_factory=list)

    def sign(self, label: str, data: bytes, scheme: SignatureScheme) -> bytes:
        self.signed.append((label, scheme))
        key = self.keys[label][1]
        digest = hashes.SHA384() if scheme.hash_name == "sha384" else hashes.SHA256()
        if isinstance(key, rsa.RSAPrivateKey):
            assert scheme.is_rsa
            return key.sign(data, padding.PKCS1v15(), digest)
        return key.sign(data, ec.ECDSA(digest))

    def public_key_der(self, label: str) -> bytes:
        return self.keys[label][1].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def algorithm_of(self, label: str) -> KeyAlgorithm:
        return self.keys[label][0]

    def signing_key(self, label: str, algorithm: KeyAlgorithm) -> SigningKey:
        self.keys[label] = (algorithm, throwaway_key(algorithm))
        return SigningKey(token_private_key(self, label), algorithm, throwaway_key(algorithm))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, issuer: x509.Name, public: object, signer: SigningKey, ca: bool, eku: bool = False
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return builder.sign(signer.key, hashes.SHA256())


@dataclass
class Setup:
    signer: FakeSigner
    ca: x509.Certificate
    responder_cert: x509.Certificate
    issuer: OcspIssuer
    leaf: x509.Certificate
    foreign_ca: x509.Certificate
    foreign_leaf: x509.Certificate

    def responder(self, lookup: Callable[[str, int], StatusAnswer] | None = None) -> OcspResponder:
        return OcspResponder([self.issuer], lookup or (lambda _name, _serial: StatusAnswer(CertStatusKind.GOOD)))


def _setup(algorithm: KeyAlgorithm) -> Setup:
    signer = FakeSigner()
    ca_key = signer.signing_key("ca", algorithm)
    ca = _cert("Test CA", _name("Test CA"), ca_key.key.public_key(), ca_key, ca=True)
    responder_key = signer.signing_key("ocsp", algorithm)
    responder_cert = _cert("Test OCSP", ca.subject, responder_key.key.public_key(), ca_key, ca=False, eku=True)
    leaf = _cert("holder", ca.subject, throwaway_key(KeyAlgorithm.P256).public_key(), ca_key, ca=False)
    foreign_key = signer.signing_key("foreign", algorithm)
    foreign_ca = _cert("Test CA", _name("Test CA"), foreign_key.key.public_key(), foreign_key, ca=True)
    holder_key = throwaway_key(KeyAlgorithm.P256).public_key()
    foreign_leaf = _cert("holder", foreign_ca.subject, holder_key, foreign_key, ca=False)
    issuer = OcspIssuer("signature", ca, responder_cert, responder_key)
    return Setup(signer, ca, responder_cert, issuer, leaf, foreign_ca, foreign_leaf)
