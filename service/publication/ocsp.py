"""The OCSP responder of a running installation: one signer per issuing CA (its key on the token) and the status
of a serial read from the certificate rows, so a revocation is answered as soon as it commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography import x509

from ca.crl import reason_flag
from ca.hierarchy import signing_key
from ca.ocsp import CertStatusKind, OcspIssuer, OcspResponder, StatusAnswer
from hsm import TokenSession
from service.db.models import CaRecord
from service.db.repository import Repository, utc


def status_lookup(store: Repository) -> Callable[[str, int], StatusAnswer]:
    """Issued: good; revoked: revoked with its time and reason; anything else (unknown, pending, failed, another
    issuer's): unknown."""

    def status(issuer: str, serial: int) -> StatusAnswer:
        record = store.certificate_status(serial)
        if record is None or record.issuer != issuer or record.status not in ("issued", "revoked"):
            return StatusAnswer(CertStatusKind.UNKNOWN)
        if record.status == "revoked":
            return StatusAnswer(
                CertStatusKind.REVOKED,
                revoked_at=utc(record.revoked_at or record.created_at),
                reason=reason_flag(record.revocation_reason or "unspecified"),
            )
        return StatusAnswer(CertStatusKind.GOOD)

    return status


def ocsp_responder(store: Repository, session: TokenSession, records: Sequence[CaRecord]) -> OcspResponder:
    """The responder over every issuing CA of ``records``, each answered by its OCSP signer."""
    issuers = []
    for record in (r for r in records if r.role == "issuing"):
        signer = next(r for r in records if r.role == "ocsp" and r.name == record.name)
        issuers.append(
            OcspIssuer(
                name=record.name,
                ca_certificate=x509.load_der_x509_certificate(record.certificate_der),
                responder_certificate=x509.load_der_x509_certificate(signer.certificate_der),
                responder_key=signing_key(session, signer.key_label),
            )
        )
    return OcspResponder(issuers, status_lookup(store))
