"""Re-keying a service whose certificate was revoked: a CMP responder or the TLS server gets a new key pair on
the token (the old one is destroyed) and a new certificate for it, through the issuance pipeline.

Revocation says the key may be compromised, so the certificate is never reissued for it. This runs when the
CA operator revokes the certificate (the only actor the policy lets: rule REVOKE-INFRA), as part of that
operator action; requests never provision. A TLS terminator already running keeps the old chain until it is
restarted (``koshin serve --tls`` makes it from the new one).
"""

from __future__ import annotations

from cryptography import x509

from service.db.models import CertificateRecord
from service.protocols.cmp import responder
from service.runtime import Runtime
from service.tls import credentials as tls


def rekey_service(rt: Runtime, record: CertificateRecord) -> x509.Certificate | None:
    """A new key and certificate for the service ``record`` belonged to; None for a profile with no service."""
    if record.profile == responder.PROFILE:
        return responder.rekey(rt, record.issuer)
    if record.profile == tls.PROFILE and record.certificate_der is not None:
        revoked = x509.load_der_x509_certificate(record.certificate_der)
        return tls.rekey(rt, [n for n in tls.names_of(revoked) if n not in tls.DEFAULT_NAMES]).certificate
    return None
