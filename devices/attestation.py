"""The device side of key attestation (ca/attestation.py): a device maker's attestation CA, the attestation key
it certifies in each device at manufacture, and the statement a device makes about a key it generated.

- ``DeviceMaker.create``: the maker's root, a P-256 key on the maker's own token and a self-signed CA
  certificate (``koshin devices make --kind maker``). The service trusts the roots in
  ``KOSHIN_DEVICE_MAKER_ROOTS``.
- ``DeviceMaker.certify``: at manufacture, an ``attestation`` key generated in one credential of a device
  (phone, next-generation card) and a CA certificate for it (pathLen 0), signed by the maker's root.
- ``attest``: the device firmware's statement about one of its keys, read from the token's own attributes
  (CKA_LOCAL: generated on the token; CKA_NEVER_EXTRACTABLE and not CKA_EXTRACTABLE: cannot leave it;
  CKA_SIGN), signed with the device's attestation key. A card's chip cannot generate keys: its keys are
  injected (LOCAL false), so it has no attestation key and any statement would say origin ``imported``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import NameOID

from ca.attestation import (
    ORIGIN_GENERATED,
    ORIGIN_IMPORTED,
    PURPOSE_SIGN,
    SECURITY_STRONGBOX,
    attestation_certificate,
    key_description,
)
from ca.extensions import ca_builder
from ca.keyseam import token_private_key
from hsm import KeyAlgorithm, TokenSession

MAKER_LABEL = "maker-attestation-root"
ATTESTATION_LABEL = "attestation"
LIFETIME = timedelta(days=3650)


def _ca_certificate(
    subject: x509.Name, issuer: x509.Name, public_der: bytes, signer: TokenSession, label: str, path_length: int
) -> x509.Certificate:
    now = datetime.now(UTC).replace(microsecond=0)
    public_key = load_der_public_key(public_der)
    return (
        ca_builder(subject, issuer, public_key, now - timedelta(minutes=5), now + LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False), critical=True)
        .sign(token_private_key(signer, label), hashes.SHA256())
    )


@dataclass(frozen=True)
class DeviceMaker:
    token: TokenSession  # the maker's own token, holding MAKER_LABEL
    certificate: x509.Certificate  # its self-signed attestation root

    @classmethod
    def create(cls, token: TokenSession, name: str) -> DeviceMaker:
        token.generate_keypair(KeyAlgorithm.P256, MAKER_LABEL)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Key Attestation Root")])  # fmt: skip
        root = _ca_certificate(subject, subject, token.public_key_der(MAKER_LABEL), token, MAKER_LABEL, 1)
        return cls(token, root)

    def certify(self, device: TokenSession, device_name: str) -> x509.Certificate:
        """Manufacture: an attestation key inside one credential of a device, certified by this maker."""
        device.generate_keypair(KeyAlgorithm.P256, ATTESTATION_LABEL)
        return self.certify_key(device.public_key_der(ATTESTATION_LABEL), device_name)

    def certify_key(self, public_der: bytes, device_name: str) -> x509.Certificate:
        """The device attestation certificate (a CA, pathLen 0) for a device's attestation public key."""
        maker = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(maker)),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{device_name} attestation")])  # fmt: skip
        return _ca_certificate(subject, self.certificate.subject, public_der, self.token, MAKER_LABEL, 0)


def attest(token: TokenSession, key_label: str, device_certificate: x509.Certificate, challenge: bytes) -> bytes:
    """The device's attestation chain for ``key_label`` (PEM: the leaf, then the device certificate)."""
    info = next(k for k in token.key_objects() if k.label == key_label and k.object_class == "PRIVATE_KEY")
    flags = info.attributes
    origin = ORIGIN_GENERATED if flags.get("LOCAL") else ORIGIN_IMPORTED
    no_export = bool(flags.get("NEVER_EXTRACTABLE")) and not flags.get("EXTRACTABLE")
    purposes = [PURPOSE_SIGN] if flags.get("SIGN") else []
    description = key_description(challenge, origin, no_export, purposes, SECURITY_STRONGBOX)
    attested = load_der_public_key(token.public_key_der(key_label))
    leaf = attestation_certificate(device_certificate, token_private_key(token, ATTESTATION_LABEL), attested,
                                   description)  # fmt: skip
    return leaf.public_bytes(Encoding.PEM) + device_certificate.public_bytes(Encoding.PEM)
