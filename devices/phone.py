"""The smartphone: keys generated in its secure element, enrollment signed with the card's signature key.

Only public keys leave the phone (as CSRs); the card's signature key signs the application on the card,
after the holder enters the card's signature password there.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, ObjectClass

from devices.attestation import attest
from devices.device import Device
from devices.station import call, csr_on
from hsm import KeyAlgorithm, SignatureScheme, TokenSession
from service.protocols.phone import application_bytes, renewal_bytes

CREDENTIALS = ("signature", "user-authentication")


@dataclass(frozen=True)
class PhoneEnrollment:
    device_id: str
    answer: dict[str, Any]
    key_labels: dict[str, str]


def card_signature_key(card: TokenSession) -> tuple[str, KeyAlgorithm]:
    """The one private key on a card's signature credential, and its algorithm."""
    with card.locked() as session:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    if len(keys) != 1:
        raise ValueError(f"the card's signature credential holds {len(keys)} keys, expected 1")
    label = str(keys[0][Attribute.LABEL])
    return label, card.algorithm_of(label)


def label_for_certificate(token: TokenSession, certificate: x509.Certificate) -> str:
    """The label of the private key on ``token`` whose public half is the certificate's."""
    wanted = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    with token.locked() as session:
        labels = [str(k[Attribute.LABEL]) for k in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})]
    for label in labels:
        if token.public_key_der(label) == wanted:
            return label
    raise ValueError(f"no key on {token.token_label!r} matches certificate {certificate.serial_number:x}")


class Phone:
    """``attestation``: each credential's device attestation certificate (issued by the maker at manufacture);
    without it the phone sends no key attestation and the service sees no on-device key generation."""

    def __init__(self, http: httpx.Client, device: Device, pins: dict[str, str], device_id: str,
                 attestation: Mapping[str, x509.Certificate] | None = None) -> None:  # fmt: skip
        self.http, self.device, self.pins, self.device_id = http, device, pins, device_id
        self.attestation = dict(attestation or {})

    def _attest(self, token: TokenSession, credential: str, label: str, nonce: str) -> str | None:
        device_certificate = self.attestation.get(credential)
        if device_certificate is None:
            return None
        return attest(token, label, device_certificate, bytes.fromhex(nonce)).decode()

    def enroll(self, card: Device, card_password: str, card_certificate_pem: str) -> PhoneEnrollment:
        algorithm = KeyAlgorithm.P256
        labels = {cred: f"phone-{cred}-{secrets.token_hex(4)}" for cred in CREDENTIALS}
        nonce = call(self.http, "POST", "/v1/phone-enrollments/nonce")["nonce"]
        csrs: dict[str, bytes] = {}
        attestations: dict[str, str | None] = {}
        for cred, label in labels.items():  # the secure element makes its own keys (CKA_LOCAL true) and says so
            with self.device.open(cred, self.pins[cred]) as token:
                token.generate_keypair(algorithm, label)
                csrs[cred] = csr_on(token, label, algorithm).encode()
                attestations[cred] = self._attest(token, cred, label, nonce)
        application = application_bytes(nonce, self.device_id, {"signature": csrs["signature"],
                                         "user-authentication": csrs["user-authentication"]})  # fmt: skip
        with card.open("signature", card_password) as card_token:  # the holder types the card's password
            card_label, card_algorithm = card_signature_key(card_token)
            scheme = SignatureScheme.RSA_PKCS1V15_SHA256 if card_algorithm.is_rsa else SignatureScheme.ECDSA_SHA256
            signature = card_token.sign(card_label, application, scheme)
        answer = call(self.http, "POST", "/v1/phone-enrollments", {
            "card_certificate_pem": card_certificate_pem, "device_id": self.device_id,
            "signature_csr_pem": csrs["signature"].decode(),
            "user_authentication_csr_pem": csrs["user-authentication"].decode(),
            "nonce": nonce, "application_signature_b64": base64.b64encode(signature).decode(),
            "signature_attestation_pem": attestations["signature"],
            "user_authentication_attestation_pem": attestations["user-authentication"]})  # fmt: skip
        return PhoneEnrollment(self.device_id, answer, labels)

    def renew(
        self, credential: str, current_label: str | None, current_certificate_pem: str
    ) -> tuple[dict[str, Any], str]:
        """Re-key one credential: a new key on the phone, the request signed with the current key there (found
        by the certificate's public key when no label is given)."""
        algorithm = KeyAlgorithm.P256
        label = f"phone-{credential}-{secrets.token_hex(4)}"
        current = x509.load_pem_x509_certificate(current_certificate_pem.encode())
        with self.device.open(credential, self.pins[credential]) as token:
            current_label = current_label or label_for_certificate(token, current)
            token.generate_keypair(algorithm, label)
            csr = csr_on(token, label, algorithm)
            nonce = call(self.http, "POST", "/v1/phone-enrollments/nonce")["nonce"]
            attestation = self._attest(token, credential, label, nonce)
            data = renewal_bytes(nonce, f"{current.serial_number:040x}", csr.encode())
            signature = token.sign(current_label, data, SignatureScheme.ECDSA_SHA256)
        answer = call(self.http, "POST", "/v1/phone-renewals", {
            "current_certificate_pem": current_certificate_pem, "csr_pem": csr, "nonce": nonce,
            "signature_b64": base64.b64encode(signature).decode(), "attestation_pem": attestation})  # fmt: skip
        return answer, label
