"""A phone whose secure element is software (for tests that build requests by hand): an attestation key
certified by the test device maker, making the attestation chains a real device's firmware would."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca.attestation import ORIGIN_GENERATED, PURPOSE_SIGN, SECURITY_STRONGBOX, attestation_certificate, key_description
from tests.conftest import Makers


@dataclass(frozen=True)
class SoftDevice:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def made_by(cls, makers: Makers, name: str) -> SoftDevice:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return cls(key, makers.maker.certify_key(public, name))

    def attest(self, public_key: PublicKeyTypes, challenge: bytes, origin: int = ORIGIN_GENERATED,
               no_export: bool = True) -> str:  # fmt: skip
        description = key_description(challenge, origin, no_export, [PURPOSE_SIGN], SECURITY_STRONGBOX)
        leaf = attestation_certificate(self.certificate, self.key, public_key, description)
        return (leaf.public_bytes(Encoding.PEM) + self.certificate.public_bytes(Encoding.PEM)).decode()
