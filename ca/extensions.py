"""Subject names and extensions of holder and CA certificates, built from profiles and holder records."""

from __future__ import annotations

import ipaddress
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.holder import Holder, jpki_date_of_birth
from ca.profiles import AssuranceLevel, CaSpec, CertificateProfile, Hierarchy, ServerProfile
from ca.validity import JST

NAME_OIDS = {
    "C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "CN": NameOID.COMMON_NAME,
}  # fmt: skip
EKU_OIDS = {
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH, "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION, "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "cmc_ra": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28"),  # id-kp-cmcRA (RFC 6402)
}  # fmt: skip
_OPAQUE_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class CaUrls:
    """Where relying parties fetch CRLs, OCSP answers and issuer certificates."""

    base_url: str

    def crl(self, ca: str, shard: int | None = None) -> str:
        """The complete CRL of ``ca``, or one shard of its partitioned CRL (``{base}/crl/<ca>/<shard>.crl``)."""
        if shard is None:
            return f"{self.base_url.rstrip('/')}/crl/{ca}.crl"
        return f"{self.base_url.rstrip('/')}/crl/{ca}/{shard}.crl"

    def ocsp(self, ca: str) -> str:
        return f"{self.base_url.rstrip('/')}/ocsp/{ca}"

    def ca_issuers(self, ca: str) -> str:
        return f"{self.base_url.rstrip('/')}/ca/{ca}.cer"


def issuance_id(issued_at: datetime) -> str:
    """JPKI-style signature CN: issuance timestamp (JST) + a random sequence part."""
    return f"{issued_at.astimezone(JST):%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def opaque_id() -> str:
    """A 23-character random alphanumeric id, like the CN of a JPKI user-authentication certificate."""
    return "".join(secrets.choice(_OPAQUE_ALPHABET) for _ in range(23))


def _holder_value(holder: Holder, source: str, issued_at: datetime) -> str:
    """The text a profile field takes: a holder attribute in its JPKI encoding, or a fresh opaque id."""
    if source == "issuance_id":
        return issuance_id(issued_at)
    if source == "opaque_id":
        return opaque_id()
    if source == "date_of_birth":
        return jpki_date_of_birth(holder.date_of_birth)
    return str(getattr(holder, source))


def holder_subject(profile: CertificateProfile, holder: Holder, issued_at: datetime) -> x509.Name:
    rdns = []
    for attr in profile.subject:
        value = attr.value if attr.value is not None else _holder_value(holder, str(attr.source), issued_at)
        rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NAME_OIDS[attr.attribute], value)]))
    return x509.Name(rdns)


def ca_subject(spec: CaSpec) -> x509.Name:
    return x509.Name([x509.NameAttribute(NAME_OIDS[kind], value) for kind, value in spec.subject])


def holder_alt_names(
    profile: CertificateProfile, holder: Holder, issued_at: datetime
) -> x509.SubjectAlternativeName | None:
    if not profile.subject_alt_name:
        return None
    names: list[x509.GeneralName] = [
        x509.OtherName(
            x509.ObjectIdentifier(field.oid),
            UTF8String(_holder_value(holder, field.source, issued_at)).dump(),
        )
        for field in profile.subject_alt_name
    ]
    return x509.SubjectAlternativeName(names)


def ca_builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, not_before: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    """The part every CA certificate shares, koshin's own and a device maker's: names, key, random serial,
    validity and the subject key identifier. The caller adds basic constraints, key usage and the rest."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
    )


def key_usage(names: tuple[str, ...], *, ca: bool = False) -> x509.KeyUsage:
    flags = set(names)
    return x509.KeyUsage(
        digital_signature="digital_signature" in flags,
        content_commitment="content_commitment" in flags,
        key_encipherment="key_encipherment" in flags,
        data_encipherment="data_encipherment" in flags,
        key_agreement="key_agreement" in flags,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def distribution_extensions(
    urls: CaUrls, ca: str, *, ocsp: bool = True, shard: int | None = None
) -> tuple[x509.CRLDistributionPoints, x509.AuthorityInformationAccess]:
    """CRL distribution point and AIA of a certificate issued by ``ca``. With ``shard`` the distribution point
    is that shard's CRL (whose issuing distribution point names the same URL), else the complete CRL. Without
    ``ocsp`` (certificates the root issues: there is no root OCSP responder) the AIA names only the issuer
    certificate."""
    crl_dp = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(urls.crl(ca, shard))], None, None, None)]
    )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(urls.ca_issuers(ca))
        )
    ]
    if ocsp:
        responder = x509.UniformResourceIdentifier(urls.ocsp(ca))
        access.insert(0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP, responder))
    return crl_dp, x509.AuthorityInformationAccess(access)


def policies(hierarchy: Hierarchy, level: AssuranceLevel) -> x509.CertificatePolicies:
    oid = x509.ObjectIdentifier(hierarchy.assurance_policies[level])
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None)])


@dataclass(frozen=True)
class ServerNames:
    """The names a server certificate is for: DNS names and IP addresses. The subject CN repeats the first DNS
    name, or the first address when there is none (a CN must be one of the subjectAltName values).

    A server whose certificate carries no subjectAltName (a profile that lists no kinds, such as the CMP
    responder) has a ``common_name`` instead, and then no DNS name or address."""

    dns: tuple[str, ...]
    ip: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    common_name: str | None = None

    def __post_init__(self) -> None:
        if self.common_name is not None and (self.dns or self.ip):
            raise ValueError("a common name stands for a server without DNS names or IP addresses")
        if not self.dns and not self.ip and not self.common_name:
            raise ValueError("a server certificate needs at least one DNS name or IP address")

    @property
    def primary(self) -> str:
        if self.common_name is not None:
            return self.common_name
        return self.dns[0] if self.dns else str(self.ip[0])


def server_subject(profile: ServerProfile, names: ServerNames) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NAME_OIDS[attr.attribute], attr.value if attr.value is not None else names.primary)
            for attr in profile.subject
        ]
    )


def server_alt_names(profile: ServerProfile, names: ServerNames) -> x509.SubjectAlternativeName | None:
    """The subjectAltName of the kinds the profile lists; None when it lists none (no extension)."""
    if not profile.subject_alt_name:
        return None
    general: list[x509.GeneralName] = []
    if "dns_name" in profile.subject_alt_name:
        general += [x509.DNSName(name) for name in names.dns]
    if "ip_address" in profile.subject_alt_name:
        general += [x509.IPAddress(address) for address in names.ip]
    return x509.SubjectAlternativeName(general)
