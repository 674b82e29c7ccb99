"""Requests built by hand, with software keys standing in for the holder's devices: CSRs, counter proofing
events, a card pair, signed phone applications."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.support.api_world import COUNTER_EVIDENCE, Api


def csr_pem(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.PEM).decode()


def software_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def counter_event(api: Api, resident: str, operation: str = "cert_issue") -> dict[str, Any]:
    body = {"resident_number": resident, "operation": operation, "channel": "counter_in_person",
            "evidence": COUNTER_EVIDENCE}  # fmt: skip
    response = api.post("/v1/proofing-events", "municipal_staff", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def card_issuance(api: Api, resident: str, event_id: str, keys: dict[str, ec.EllipticCurvePrivateKey]) -> Any:
    body = {"resident_number": resident, "proofing_event_id": event_id, "card_number": api.card_of(resident),
            "signature_csr_pem": csr_pem(keys["signature"]),
            "user_authentication_csr_pem": csr_pem(keys["user-authentication"])}  # fmt: skip
    return api.post("/v1/card-issuances", "municipal_staff", body)


def enrolled_card(api: Api) -> tuple[str, ec.EllipticCurvePrivateKey, str]:
    """A resident with a card issued here: (resident, the card's signature key, its certificate PEM)."""
    resident = api.new_resident()
    event = counter_event(api, resident, "card_issue")
    keys = {"signature": software_key(), "user-authentication": software_key()}
    answer = card_issuance(api, resident, event["id"], keys)
    assert answer.status_code == 201, answer.text
    return resident, keys["signature"], str(answer.json()["signature"]["certificate_pem"])


def signed_b64(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def phone_nonce(api: Api) -> str:
    response = api.post("/v1/phone-enrollments/nonce", "holder_app")
    assert response.status_code == 201, response.text
    return str(response.json()["nonce"])
