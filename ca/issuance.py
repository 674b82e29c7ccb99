"""Holder certificate issuance in the CA core: prepare (check + build) -> lint a throwaway-signed copy -> sign
exactly the linted contents once on the token. Recording the intent before the signature and the result after
it is the service's issuance pipeline (service/flows/pipeline.py); the core holds no store.

The subject and every extension come from the profile and the holder record, never from the CSR; the CSR
contributes only its (verified, checked) public key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca import extensions as ext
from ca.crl import crl_shard
from ca.errors import CaError, CsrInvalid, IssuanceRefused, ProfileViolation
from ca.holder import Holder
from ca.keycheck import check_csr, check_public_key
from ca.lint import LintReport, PkixLinter
from ca.profiles import AssuranceLevel, CertificateProfile, ProfileSet
from ca.signing import SigningKey, lint_copy, sign_linted
from ca.validity import Validity, certificate_validity, jst_date


@dataclass(frozen=True)
class IssuingCa:
    name: str
    certificate: x509.Certificate
    signing: SigningKey


@dataclass(frozen=True)
class IssueRequest:
    """``csr`` carries the key and its proof of possession; a protocol that proves possession its own way
    (CMP/CRMF, already verified by the caller) passes ``csr=None`` and the key as ``requested_key``."""

    profile: str
    csr: x509.CertificateSigningRequest | None
    holder: Holder
    assurance: AssuranceLevel
    issued_at: datetime | None = None
    predecessor_not_after: datetime | None = None
    requested_key: CertificatePublicKeyTypes | None = None
    auth_not_after: datetime | None = None  # a signature certificate ends no later (brief §2.2)

    def capped_by_auth(self, not_after: datetime) -> IssueRequest:
        """The same request, never outliving a user-authentication certificate ending at ``not_after``."""
        cap = not_after if self.auth_not_after is None else min(self.auth_not_after, not_after)
        return replace(self, auth_not_after=cap)

    def public_key(self) -> CertificatePublicKeyTypes:
        if self.csr is not None:
            return self.csr.public_key()
        if self.requested_key is None:
            raise CsrInvalid("the request carries neither a CSR nor a verified public key")
        return self.requested_key

    def checked_algorithm(self) -> str:
        """The key checks (sizes, curves, ROCA); for a CSR also its signature and that it does not ask CA:TRUE."""
        if self.csr is None:
            return check_public_key(self.public_key())
        algorithm = check_csr(self.csr)
        _refuse_ca_request(self.csr)
        return algorithm


@dataclass(frozen=True)
class IssuanceIntent:
    """What the store records *before* the token signs: the serial is taken and the intent is known."""

    serial: int
    issuer: str
    profile: str
    subject: str
    key_algorithm: str
    assurance: AssuranceLevel
    not_before: datetime
    not_after: datetime
    validity_rule: str
    linted: bool
    crl_shard: int | None = None  # the CRL shard its distribution point names (None: the complete CRL)


@dataclass
class PreparedCertificate:
    """A checked, linted certificate body, good for exactly one signature."""

    intent: IssuanceIntent
    builder: x509.CertificateBuilder
    linted_tbs: bytes | None
    lint: LintReport | None
    used: bool = field(default=False)


def _refuse_ca_request(csr: x509.CertificateSigningRequest) -> None:
    try:
        constraints = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise CsrInvalid(f"CSR extensions do not parse: {exc}") from exc
    if constraints.ca:
        raise CsrInvalid("CSR asks for CA:TRUE; holder certificates are never CA certificates")


class CertificateAuthority:
    """Issues holder certificates from the issuing CAs of one hierarchy. Holds no private key."""

    def __init__(
        self,
        profiles: ProfileSet,
        issuers: Mapping[str, IssuingCa],
        urls: ext.CaUrls,
        linter: PkixLinter | None,
    ) -> None:
        self.profiles, self.issuers, self.urls, self.linter = profiles, dict(issuers), urls, linter

    def prepare(self, request: IssueRequest) -> PreparedCertificate:
        """Check the request against the profile, build the certificate body, lint a throwaway-signed copy."""
        profile = self.profiles.profile(request.profile)
        issuer = self.issuers.get(profile.issuing_ca)
        if issuer is None:
            raise CaError(f"issuing CA {profile.issuing_ca!r} is not loaded")
        algorithm = request.checked_algorithm()
        if algorithm not in {a.value for a in profile.allowed_key_algorithms}:
            raise ProfileViolation(f"profile {profile.name!r} does not allow {algorithm} keys")
        issued_at = (request.issued_at or datetime.now(UTC)).replace(microsecond=0)
        age = request.holder.age_on(jst_date(issued_at))
        if age < profile.min_holder_age:
            raise ProfileViolation(
                f"profile {profile.name!r} is not issued to holders under {profile.min_holder_age} (age {age})"
            )
        validity = certificate_validity(
            issued_at=issued_at,
            date_of_birth=request.holder.date_of_birth,
            card_expires=request.holder.card_expires,
            predecessor_not_after=request.predecessor_not_after,
            ca_not_after=issuer.certificate.not_valid_after_utc,
            stay_limit=request.holder.stay_limit,
            auth_not_after=request.auth_not_after,
        )
        serial = x509.random_serial_number()
        shard = crl_shard(serial, self.profiles.hierarchy.crl_shards(issuer.name))
        subject = ext.holder_subject(profile, request.holder, validity.not_before)
        builder = self._build(profile, issuer, request, serial, subject, validity, shard)
        linted_tbs, report = lint_copy(builder, issuer.signing, self.linter)
        intent = IssuanceIntent(
            serial=serial,
            issuer=issuer.name,
            profile=profile.name,
            subject=subject.rfc4514_string(),
            key_algorithm=algorithm,
            assurance=request.assurance,
            not_before=validity.not_before,
            not_after=validity.not_after,
            validity_rule=validity.rule,
            linted=self.linter is not None,
            crl_shard=shard,
        )
        return PreparedCertificate(intent=intent, builder=builder, linted_tbs=linted_tbs, lint=report)

    def _build(
        self,
        profile: CertificateProfile,
        issuer: IssuingCa,
        request: IssueRequest,
        serial: int,
        subject: x509.Name,
        validity: Validity,
        shard: int | None,
    ) -> x509.CertificateBuilder:
        """The certificate body: subject and extensions from profile and holder; from the CSR only its key."""
        public_key = request.public_key()
        issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        crl_dp, aia = ext.distribution_extensions(self.urls, issuer.name, shard=shard)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.certificate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(validity.not_before)
            .not_valid_after(validity.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(ext.key_usage(profile.key_usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
            .add_extension(ext.policies(self.profiles.hierarchy, request.assurance), critical=False)
            .add_extension(crl_dp, critical=False)
            .add_extension(aia, critical=False)
        )
        if profile.extended_key_usage:
            usages = [ext.EKU_OIDS[name] for name in profile.extended_key_usage]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        alt_names = ext.holder_alt_names(profile, request.holder, validity.not_before)
        if alt_names is not None:
            builder = builder.add_extension(alt_names, critical=False)
        return builder

    def sign(self, prepared: PreparedCertificate) -> x509.Certificate:
        """Sign exactly the linted contents once on the issuer's token key. A prepared certificate signs once:
        a second call (or one after a failed attempt) is refused before the token is touched."""
        if prepared.used:
            raise IssuanceRefused("this prepared certificate has already been signed or abandoned")
        prepared.used = True
        return sign_linted(prepared.builder, self.issuers[prepared.intent.issuer].signing, prepared.linted_tbs)
