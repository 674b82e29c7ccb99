"""Certificate revocation lists, built whole with cryptography and signed on the token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ca.errors import CaError
from ca.keyseam import signature_hash
from ca.signing import SigningKey

# RFC 5280 CRLReason names (as operators type them) -> cryptography's flags.
REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


class UnknownReason(CaError):
    """The revocation reason is not an RFC 5280 CRLReason name."""


def reason_flag(name: str) -> x509.ReasonFlags:
    try:
        return REASONS[name]
    except KeyError:
        raise UnknownReason(f"unknown revocation reason {name!r} (known: {', '.join(REASONS)})") from None


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def build_crl(
    issuer: x509.Certificate,
    signing: SigningKey,
    entries: Sequence[RevokedEntry],
    number: int,
    this_update: datetime,
    validity: timedelta,
) -> x509.CertificateRevocationList:
    """A complete CRL. The revoked list goes to the builder whole: adding entries one by one is quadratic."""
    revoked = []
    for entry in entries:
        item = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
        if entry.reason is not x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
        revoked.append(item.build())
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=this_update + validity,
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
        ],
        revoked_certificates=revoked,
    )
    return builder.sign(signing.key, signature_hash(signing.algorithm))
