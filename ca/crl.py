"""Certificate revocation lists, built whole and signed on the token: the complete CRL of an issuing CA, and
for a partitioned one (``crl_shards`` in profiles/hierarchy.yaml) one CRL per shard (RFC 5280 section 5.2.5).

A certificate's shard is ``serial mod crl_shards``, chosen when the certificate is prepared and named in its
CRL distribution point (``{base}/crl/<ca>/<shard>.crl``); the shard's CRL carries a critical issuing
distribution point whose fullName is exactly that URL, so a relying party can tell the CRL's scope is the
certificate's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from cryptography import x509

from ca.errors import UnknownReason
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


def reason_flag(name: str) -> x509.ReasonFlags:
    try:
        return REASONS[name]
    except KeyError:
        raise UnknownReason(f"unknown revocation reason {name!r} (known: {', '.join(REASONS)})") from None


class RevokedEntry(NamedTuple):
    """One CRL entry. A tuple, not a dataclass: a million of them are made while a CRL is streamed."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def crl_shard(serial: int, shards: int) -> int | None:
    """The shard a certificate's distribution point names: ``serial mod shards``; None when the issuer is not
    partitioned (``shards`` 1: the certificate names the complete CRL)."""
    if shards < 1:
        raise ValueError(f"an issuer has at least one CRL shard, not {shards}")
    return None if shards == 1 else serial % shards


def shard_scope(url: str) -> x509.IssuingDistributionPoint:
    """The issuing distribution point of a shard's CRL: its fullName is the URL the shard's certificates carry
    in their CRL distribution point; it lists end-entity certificates only (an issuing CA has pathLen 0)."""
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


def build_crl(
    issuer: x509.Certificate,
    signing: SigningKey,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: datetime,
    validity: timedelta,
    scope: x509.IssuingDistributionPoint | None = None,
) -> x509.CertificateRevocationList:
    """A CRL (complete, or with ``scope`` one shard), its DER written by ``ca.crl_der`` (byte-for-byte what
    cryptography's builder makes, at a fraction of the time and memory for a million entries) and signed on the
    token."""
    from ca.crl_der import crl_der  # ca.crl_der needs RevokedEntry from here

    der = crl_der(issuer, signing, entries, number, this_update, this_update + validity, scope=scope)
    return x509.load_der_x509_crl(der)
