"""Certificates for koshin's own servers (server profiles such as ``tls-server`` and ``cmp-responder``).

The body comes from the server profile and the operator's names; the key is one the token generated. It goes
through the same path as holder certificates: lint a throwaway-signed copy, then
``CertificateAuthority.issue_prepared`` records the intent, signs once on the token and records the result.
A profile that lists several issuing CAs (one server per CA) is issued by the one the caller names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

from ca import extensions as ext
from ca.errors import CaError, ProfileViolation
from ca.issuance import CertificateAuthority, IssuanceIntent, PreparedCertificate
from ca.keycheck import check_public_key
from ca.profiles import AssuranceLevel
from ca.signing import lint_copy

# Recorded with the certificate (the store wants a level). It is not a holder proofing: it stands for "issued
# by the operator at the CA host", as `koshin ca issue` assumes; the certificate itself carries no policy OID.
OPERATOR_ASSURANCE = AssuranceLevel.IAL3


def prepare_server_certificate(
    authority: CertificateAuthority,
    profile_name: str,
    public_key: CertificateIssuerPublicKeyTypes,
    names: ext.ServerNames,
    issued_at: datetime | None = None,
    *,
    issuing_ca: str | None = None,
) -> PreparedCertificate:
    """Check the key and names against the server profile, build the certificate body and lint a
    throwaway-signed copy. ``issuing_ca`` names the issuer when the profile lists several."""
    profile = authority.profiles.server(profile_name)
    issuer_name = profile.issuer(issuing_ca)
    issuer = authority.issuers.get(issuer_name)
    if issuer is None:
        raise CaError(f"issuing CA {issuer_name!r} is not loaded")
    algorithm = check_public_key(public_key)
    if algorithm not in {a.value for a in profile.allowed_key_algorithms}:
        raise ProfileViolation(f"profile {profile.name!r} does not allow {algorithm} keys")
    alt_names = ext.server_alt_names(profile, names)
    if alt_names is None and (names.dns or names.ip):
        raise ProfileViolation(f"profile {profile.name!r} certifies no DNS names or IP addresses")
    if alt_names is not None and not list(alt_names):
        raise ProfileViolation(f"profile {profile.name!r} needs a name of a kind it lists: {profile.subject_alt_name}")
    not_before = (issued_at or datetime.now(UTC)).replace(microsecond=0)
    not_after = min(not_before + timedelta(days=profile.validity_days), issuer.certificate.not_valid_after_utc)
    subject = ext.server_subject(profile, names)
    serial = x509.random_serial_number()
    issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    crl_dp, aia = ext.distribution_extensions(authority.urls, issuer.name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(profile.key_usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ext.EKU_OIDS[n] for n in profile.extended_key_usage]), critical=False)
    )
    if alt_names is not None:
        builder = builder.add_extension(alt_names, critical=False)
    builder = (
        builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
        .add_extension(crl_dp, critical=False)
        .add_extension(aia, critical=False)
    )
    linted_tbs, report = lint_copy(builder, issuer.signing, authority.linter)
    intent = IssuanceIntent(
        serial=serial,
        issuer=issuer.name,
        profile=profile.name,
        subject=subject.rfc4514_string(),
        key_algorithm=algorithm,
        assurance=OPERATOR_ASSURANCE,
        not_before=not_before,
        not_after=not_after,
        validity_rule=f"{profile.name}: {profile.validity_days} days",
        linted=authority.linter is not None,
    )
    return PreparedCertificate(intent=intent, builder=builder, linted_tbs=linted_tbs, lint=report)
