"""The counter station (統合端末): card issuance and renewal after in-person proofing.

The card chip cannot generate key pairs, so the station generates both of the new card's key pairs on its
own HSM, proves possession with CSRs signed there, asks the service to issue, and injects each key into the
card under that card's trusted transport key. The service only ever sees CSRs and certificates.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.keyseam import signature_hash, token_private_key
from devices.device import Device
from devices.errors import ServiceRefused
from devices.injection import inject, provision_transport_key, store_certificate
from hsm import KeyAlgorithm, TokenSession

CREDENTIALS = ("signature", "user-authentication")
COUNTER_EVIDENCE = ("photo_id_document", "resident_register_match")


def call(http: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    response = http.request(method, path, json=body)
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:200]}
        raise ServiceRefused(response.status_code, problem)
    return response.json()


@dataclass(frozen=True)
class CardRenewal:
    card_number: str
    proofing: dict[str, Any]
    certificates: dict[str, dict[str, Any]]  # credential -> CertificateOut
    revoked_serials: list[str]


def csr_on(token: TokenSession, label: str, algorithm: KeyAlgorithm) -> str:
    """A CSR signed on the token (proof of possession). Its subject is a placeholder the CA ignores."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koshin station request")])
    key = token_private_key(token, label)
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, signature_hash(algorithm))
    return csr.public_bytes(Encoding.PEM).decode()


class Station:
    def __init__(self, http: httpx.Client, device: Device, operator_pin: str, so_pin: str) -> None:
        self.http, self.device, self.operator_pin, self.so_pin = http, device, operator_pin, so_pin

    def renew_card(
        self,
        *,
        resident_number: str,
        card: Device,
        card_number: str,
        transport_pins: dict[str, str],
        holder_pins: dict[str, str],
        replaces_card: str | None,
        evidence: tuple[str, ...] = COUNTER_EVIDENCE,
        algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048,
        proofing: dict[str, Any] | None = None,
    ) -> CardRenewal:
        """Proof in person (or take a proofing event recorded elsewhere, e.g. a remote application a central
        issuing station serves), then personalise a blank card: keys from the station, certificates from the CA."""
        if proofing is None:
            operation = "card_renew" if replaces_card else "card_issue"
            proofing = call(self.http, "POST", "/v1/proofing-events", {
                "resident_number": resident_number, "operation": operation, "channel": "counter_in_person",
                "evidence": list(evidence)})  # fmt: skip
        call(self.http, "POST", f"/v1/residents/{resident_number}/cards",
             {"number": card_number, "issued_on": datetime.now(UTC).date().isoformat()})  # fmt: skip
        cards = {cred: card.open(cred, transport_pins[cred]) for cred in CREDENTIALS}
        try:
            station_label = self.device.token_label(next(iter(self.device.profile.credentials)))
            for token in cards.values():  # personalisation: a fresh transport key per card credential
                provision_transport_key(self.device.module_path, station_label, self.so_pin, token)
            renewal = self._issue_and_inject(proofing, resident_number, card_number, replaces_card, cards, algorithm)
        finally:
            for token in cards.values():
                token.close()
        for cred in CREDENTIALS:  # the holder's own PINs replace the blank card's transport PINs
            card.set_pin(cred, transport_pins[cred], holder_pins[cred])
        return renewal

    def _issue_and_inject(
        self,
        proofing: dict[str, Any],
        resident_number: str,
        card_number: str,
        replaces_card: str | None,
        cards: dict[str, TokenSession],
        algorithm: KeyAlgorithm,
    ) -> CardRenewal:
        station = self.device.open(next(iter(self.device.profile.credentials)), self.operator_pin)
        labels = {cred: f"{card_number}-{cred}-{secrets.token_hex(4)}" for cred in CREDENTIALS}
        try:
            csrs = {}
            for cred, label in labels.items():
                station.generate_keypair(algorithm, label, for_injection=True)
                csrs[cred] = csr_on(station, label, algorithm)
            answer = call(self.http, "POST", "/v1/card-issuances", {
                "resident_number": resident_number, "proofing_event_id": proofing["id"], "card_number": card_number,
                "signature_csr_pem": csrs["signature"], "user_authentication_csr_pem": csrs["user-authentication"],
                "replaces_card": replaces_card})  # fmt: skip
            certificates = {"signature": answer["signature"], "user-authentication": answer["user_authentication"]}
            for cred, label in labels.items():
                ref = inject(station, cards[cred], label, algorithm)
                cert = x509.load_pem_x509_certificate(certificates[cred]["certificate_pem"].encode())
                store_certificate(cards[cred], label, ref.key_id, cert.public_bytes(Encoding.DER),
                                  cert.subject.public_bytes())  # fmt: skip
        finally:
            for label in labels.values():
                if station.has_key(label):
                    station.delete_key(label)  # nothing of a failed personalisation stays on the station
            station.close()
        return CardRenewal(card_number, proofing, certificates, list(answer["revoked_serials"]))
