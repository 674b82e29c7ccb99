"""Wire formats shared by the service and its clients (no server state here)."""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.serialization import Encoding

from ca.keycheck import load_csr

PHONE_PROFILES = ("signature", "user-authentication")
PHONE_APPLICATION_DOMAIN = b"koshin-phone-enrollment-v1\n"


def application_bytes(nonce: str, device_id: str, csrs: dict[str, bytes]) -> bytes:
    """What the card's signature key signs for a phone enrollment: a domain tag, then canonical JSON of the
    server nonce, the device id and the SHA-256 of each CSR's DER."""
    digests = {p: hashlib.sha256(load_csr(csrs[p]).public_bytes(Encoding.DER)).hexdigest() for p in PHONE_PROFILES}
    body = {"nonce": nonce, "device_id": device_id, "csr_sha256": digests}
    return PHONE_APPLICATION_DOMAIN + json.dumps(body, sort_keys=True).encode()


PHONE_RENEWAL_DOMAIN = b"koshin-phone-renewal-v1\n"


def renewal_bytes(nonce: str, replaces_serial: str, csr: bytes) -> bytes:
    """What the phone's CURRENT key signs to re-key its certificate: a domain tag, then canonical JSON of the
    server nonce, the serial being replaced and the SHA-256 of the new CSR's DER."""
    digest = hashlib.sha256(load_csr(csr).public_bytes(Encoding.DER)).hexdigest()
    body = {"nonce": nonce, "replaces": replaces_serial.lower(), "csr_sha256": digest}
    return PHONE_RENEWAL_DOMAIN + json.dumps(body, sort_keys=True).encode()
