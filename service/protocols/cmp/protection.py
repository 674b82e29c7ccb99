"""Message protection (RFC 4210 §5.1.3, algorithms of RFC 9481): password-based MAC and signatures.

PBM: BASEKEY = OWF^iterationCount(secret || salt), then MAC = HMAC(BASEKEY, DER(ProtectedPart)). The request's
OWF, MAC and iteration count are accepted from a short list (SHA-2 OWFs; HMAC-SHA1 is RFC 4210's mandatory MAC
and openssl 3.0's default) and reused, with a fresh salt, for the response.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280, rfc9480

from service.protocols.cmp.errors import CmpRejected

ID_PBM = univ.ObjectIdentifier("1.2.840.113533.7.66.13")
PBM_ITERATIONS = range(100, 10_001)  # openssl cmp sends 500; 100,000 rounds cost 0.18 s of CPU, 10,000 about 18 ms
_OWF = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}
_MAC = {
    "1.3.6.1.5.5.8.1.2": "sha1",  # hmac-sha1 (RFC 4210's mandatory PBM MAC; openssl cmp's default)
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
# signature algorithm OID -> (key family, hash)
SIGNATURES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.2.840.10045.4.3.2": ("ec", hashes.SHA256),
    "1.2.840.10045.4.3.3": ("ec", hashes.SHA384),
    "1.2.840.10045.4.3.4": ("ec", hashes.SHA512),
    "1.2.840.113549.1.1.11": ("rsa", hashes.SHA256),
    "1.2.840.113549.1.1.12": ("rsa", hashes.SHA384),
    "1.2.840.113549.1.1.13": ("rsa", hashes.SHA512),
}


def is_pbm(algorithm: rfc5280.AlgorithmIdentifier) -> bool:
    return bool(algorithm["algorithm"] == ID_PBM)


@dataclass(frozen=True)
class PbmParameters:
    owf_oid: str
    mac_oid: str
    iterations: int

    @classmethod
    def of(cls, algorithm: rfc5280.AlgorithmIdentifier) -> tuple[PbmParameters, bytes]:
        """The request's parameters and salt; badAlg for anything outside the accepted list."""
        try:
            params, _ = decoder.decode(bytes(algorithm["parameters"]), asn1Spec=rfc9480.PBMParameter())
        except (PyAsn1Error, ValueError, TypeError):
            raise CmpRejected("badAlg", "PBMParameter does not decode") from None
        owf, mac, count = (
            str(params["owf"]["algorithm"]),
            str(params["mac"]["algorithm"]),
            int(params["iterationCount"]),
        )
        if owf not in _OWF or mac not in _MAC:
            raise CmpRejected("badAlg", f"PBM with OWF {owf} and MAC {mac} is not accepted")
        if count not in PBM_ITERATIONS:
            raise CmpRejected("badAlg", f"PBM iteration count {count} is outside "
                              f"{PBM_ITERATIONS.start}..{PBM_ITERATIONS.stop - 1}")  # fmt: skip
        return cls(owf, mac, count), bytes(params["salt"])

    def algorithm(self, salt: bytes) -> rfc5280.AlgorithmIdentifier:
        params = rfc9480.PBMParameter()
        params["salt"] = salt
        params["owf"]["algorithm"] = univ.ObjectIdentifier(self.owf_oid)
        params["iterationCount"] = self.iterations
        params["mac"]["algorithm"] = univ.ObjectIdentifier(self.mac_oid)
        identifier = rfc5280.AlgorithmIdentifier()
        identifier["algorithm"] = ID_PBM
        identifier["parameters"] = encoder.encode(params)
        return identifier

    def mac(self, secret: bytes, salt: bytes, data: bytes) -> bytes:
        owf = _OWF[self.owf_oid]
        key = hashlib.new(owf, secret + salt).digest()
        for _ in range(self.iterations - 1):
            key = hashlib.new(owf, key).digest()
        return hmac.new(key, data, _MAC[self.mac_oid]).digest()


def verify_pbm(algorithm: rfc5280.AlgorithmIdentifier, secret: bytes, data: bytes, protection: bytes) -> PbmParameters:
    params, salt = PbmParameters.of(algorithm)
    if not hmac.compare_digest(params.mac(secret, salt, data), protection):
        raise CmpRejected("badMessageCheck", "the MAC does not verify: unknown proofing event or wrong secret")
    return params


@dataclass(frozen=True)
class MacProtector:
    """Protects responses with the requester's shared secret (fresh salt, the request's parameters)."""

    params: PbmParameters
    secret: bytes
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def algorithm(self) -> rfc5280.AlgorithmIdentifier:
        return self.params.algorithm(self.salt)

    def sender_kid(self) -> bytes | None:
        return None

    def protect(self, protected_part_der: bytes) -> bytes:
        return self.params.mac(self.secret, self.salt, protected_part_der)

    def extra_certs(self) -> Sequence[x509.Certificate]:
        return ()


def verify_signature(
    public_key: CertificatePublicKeyTypes, algorithm: rfc5280.AlgorithmIdentifier, data: bytes, signature: bytes
) -> None:
    """Raise CmpRejected(badMessageCheck) unless ``signature`` over ``data`` verifies under ``public_key``."""
    entry = SIGNATURES.get(str(algorithm["algorithm"]))
    if entry is None:
        raise CmpRejected("badAlg", f"signature algorithm {algorithm['algorithm']} is not accepted")
    family, hash_type = entry
    try:
        if family == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_type()))
        elif family == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_type())
        else:
            raise CmpRejected("badAlg", f"signature algorithm {algorithm['algorithm']} does not fit the key")
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        raise CmpRejected("badMessageCheck", "the signature does not verify") from None


def signature_algorithm(key: PrivateKeyTypes) -> tuple[rfc5280.AlgorithmIdentifier, hashes.HashAlgorithm]:
    """ECDSA with SHA-256 (P-256) or SHA-384 (P-384), or sha256WithRSAEncryption."""
    identifier = rfc5280.AlgorithmIdentifier()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        p384 = key.curve.name == ec.SECP384R1.name
        identifier["algorithm"] = univ.ObjectIdentifier("1.2.840.10045.4.3.3" if p384 else "1.2.840.10045.4.3.2")
        return identifier, hashes.SHA384() if p384 else hashes.SHA256()
    identifier["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.1.1.11")
    identifier["parameters"] = encoder.encode(univ.Null(""))
    return identifier, hashes.SHA256()


@dataclass(frozen=True)
class SignatureProtector:
    """Protects responses with the CMP responder's token key; its certificate and chain go in extraCerts."""

    key: PrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def algorithm(self) -> rfc5280.AlgorithmIdentifier:
        return signature_algorithm(self.key)[0]

    def sender_kid(self) -> bytes | None:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return ski.digest

    def protect(self, protected_part_der: bytes) -> bytes:
        hash_algorithm = signature_algorithm(self.key)[1]
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(protected_part_der, ec.ECDSA(hash_algorithm))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(protected_part_der, padding.PKCS1v15(), hash_algorithm)
        raise CmpRejected("systemFailure", "the CMP responder key type cannot sign")

    def extra_certs(self) -> Sequence[x509.Certificate]:
        return (self.certificate, *self.chain)
