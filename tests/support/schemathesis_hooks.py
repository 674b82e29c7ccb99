"""Schemathesis hooks for the OpenAPI contract test (``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``).

What JSON Schema cannot generate, made real here, so a schema-valid request is one the service can accept:
- the PEM formats the document names (``pem-pkcs10``, ``pem-certificate``, ``pem-certificates``): real CSRs
  and certificates (software test keys made here, P-256; nothing of the service's);
- the protocol bodies (EST's base64 PKCS#10, CMP, OCSP and time-stamp DER): a real CSR for EST, any bytes for
  the others (each protocol answers bytes it cannot parse with its own error message, HTTP 200).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "schemathesis")])
_KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
_CSRS = [x509.CertificateSigningRequestBuilder().subject_name(_NAME).sign(k, hashes.SHA256()) for k in _KEYS]
_NOW = datetime.now(UTC)
_CERTS = [
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(k.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(_NOW - timedelta(days=1))
    .not_valid_after(_NOW + timedelta(days=30))
    .sign(k, hashes.SHA256())
    for k in _KEYS
]

schemathesis.openapi.format("pem-pkcs10", st.sampled_from([c.public_bytes(Encoding.PEM).decode() for c in _CSRS]))
schemathesis.openapi.format("pem-certificate", st.sampled_from([c.public_bytes(Encoding.PEM).decode() for c in _CERTS]))
schemathesis.openapi.format(
    "pem-certificates", st.sampled_from(["".join(c.public_bytes(Encoding.PEM).decode() for c in _CERTS[:2])])
)
schemathesis.openapi.media_type(
    "application/pkcs10", st.sampled_from([base64.encodebytes(c.public_bytes(Encoding.DER)) for c in _CSRS])
)
for _media in ("application/pkixcmp", "application/ocsp-request", "application/timestamp-query"):
    schemathesis.openapi.media_type(_media, st.binary(max_size=512))


def _card_before_birth(resident: object) -> bool:
    if not isinstance(resident, dict):
        return False
    born, cards = resident.get("date_of_birth"), resident.get("cards")
    if not isinstance(born, str) or not isinstance(cards, list):
        return False
    return any(isinstance(c, dict) and isinstance(c.get("issued_on"), str) and c["issued_on"] < born for c in cards)


@schemathesis.hook
def filter_body(ctx: schemathesis.HookContext, body: object) -> bool:
    """The one cross-field rule JSON Schema cannot state (ResidentIn.cards' description): a card is not issued
    before its holder's birth. Bodies that break it are left out; the service's 422 for them is tested in
    tests/service/api/test_errors.py."""
    if not isinstance(body, dict) or ctx.operation is None:
        return True
    if ctx.operation.path == "/v1/residents":
        residents: list[object] = [body]
    else:
        listed = body.get("residents")
        residents = listed if isinstance(listed, list) else []
    return not any(_card_before_birth(r) for r in residents)
