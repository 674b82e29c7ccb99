"""The key ceremony: root CA, one issuing CA per certificate type, an OCSP signer under each issuing CA, and
the time-stamp authority (RFC 3161) under the issuing CA the hierarchy names for it.

Every key is generated on the token; a ceremony that fails midway destroys the keys it generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca import extensions as ext
from ca.errors import TsaKeyUnsound
from ca.keyseam import token_private_key
from ca.lint import PkixLinter
from ca.profiles import CaSpec, Hierarchy, TsaSpec
from ca.signing import SigningKey, lint_and_sign, throwaway_key
from hsm import KeyAlgorithm, TokenSession
from hsm.key_rules import audit_entry

CaRole = Literal["root", "issuing", "ocsp", "tsa"]
TSA_NAME = "tsa"


@dataclass(frozen=True)
class CaMaterial:
    """One CA-side certificate with the token key that belongs to it."""

    name: str
    role: CaRole
    key_label: str
    key_uri: str
    certificate: x509.Certificate


def key_label(prefix: str, name: str, role: CaRole) -> str:
    if role in ("root", "tsa"):
        return f"{prefix}{name}"
    return f"{prefix}{name}-{'ca' if role == 'issuing' else role}"


def signing_key(session: TokenSession, label: str) -> SigningKey:
    algorithm = session.algorithm_of(label)
    return SigningKey(key=token_private_key(session, label), algorithm=algorithm, lint_key=throwaway_key(algorithm))


def _ca_builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, spec: CaSpec, not_before: datetime
) -> x509.CertificateBuilder:
    return ext.ca_builder(subject, issuer, public_key, not_before, not_before + timedelta(days=spec.validity_days))


def _aki(issuer_cert: x509.Certificate | None, public_key: object) -> x509.AuthorityKeyIdentifier:
    if issuer_cert is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)  # type: ignore[arg-type]
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


class _Ceremony:
    def __init__(
        self, session: TokenSession, algorithm: KeyAlgorithm, prefix: str, *, reuse_sound_tsa_key: bool = False
    ) -> None:
        self.session, self.algorithm, self.prefix = session, algorithm, prefix
        self.reuse_sound_tsa_key = reuse_sound_tsa_key
        self.generated: list[str] = []

    def tsa_key(self) -> tuple[str, str, SigningKey]:
        label = key_label(self.prefix, TSA_NAME, "tsa")
        if self.reuse_sound_tsa_key and self.session.has_key(label):
            problems = [v for info in self.session.key_objects() if info.label == label
                        for v in audit_entry(info).violations]  # fmt: skip
            if problems:
                raise TsaKeyUnsound(f"key {label!r} on the token breaks the key rule: {'; '.join(problems)}")
            return label, self.session.key_ref(label).uri(), signing_key(self.session, label)
        return self.new_key(TSA_NAME, "tsa")

    def new_key(self, name: str, role: CaRole) -> tuple[str, str, SigningKey]:
        label = key_label(self.prefix, name, role)
        ref = self.session.generate_keypair(self.algorithm, label)
        self.generated.append(label)
        return label, ref.uri(), signing_key(self.session, label)

    def destroy_generated(self) -> None:
        for label in self.generated:
            self.session.delete_key(label)


def run_ceremony(
    session: TokenSession,
    hierarchy: Hierarchy,
    algorithm: KeyAlgorithm,
    urls: ext.CaUrls,
    linter: PkixLinter | None,
    label_prefix: str = "koshin-",
) -> list[CaMaterial]:
    """Generate the hierarchy's keys on the token and certify them. Returns root, issuing CAs, OCSP signers."""
    ceremony = _Ceremony(session, algorithm, label_prefix)
    try:
        return _certify_all(ceremony, hierarchy, urls, linter)
    except Exception:
        ceremony.destroy_generated()
        raise


def _certify_all(
    ceremony: _Ceremony, hierarchy: Hierarchy, urls: ext.CaUrls, linter: PkixLinter | None
) -> list[CaMaterial]:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    root_label, root_uri, root_key = ceremony.new_key("root", "root")
    root_name = ext.ca_subject(hierarchy.root)
    root_public = root_key.key.public_key()
    root_builder = (
        _ca_builder(root_name, root_name, root_public, hierarchy.root, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=hierarchy.root.path_length), critical=True)
        .add_extension(ext.key_usage((), ca=True), critical=True)
        .add_extension(_aki(None, root_public), critical=False)
    )
    root_cert = lint_and_sign(root_builder, root_key, linter)
    materials = [CaMaterial("root", "root", root_label, root_uri, root_cert)]

    for name, spec in hierarchy.issuing.items():
        label, uri, key = ceremony.new_key(name, "issuing")
        public = key.key.public_key()
        crl_dp, aia = ext.distribution_extensions(urls, "root", ocsp=False)
        builder = (
            _ca_builder(ext.ca_subject(spec), root_name, public, spec, now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True)
            .add_extension(ext.key_usage(("digital_signature",), ca=True), critical=True)
            .add_extension(_aki(root_cert, public), critical=False)
            .add_extension(crl_dp, critical=False)
            .add_extension(aia, critical=False)
        )
        issuing_cert = lint_and_sign(builder, root_key, linter)
        materials.append(CaMaterial(name, "issuing", label, uri, issuing_cert))
        materials.append(_ocsp_signer(ceremony, name, spec, issuing_cert, key, now, linter))
    if hierarchy.tsa is not None:
        issuer = next(m for m in materials if m.role == "issuing" and m.name == hierarchy.tsa.issuer)
        issuer_key = signing_key(ceremony.session, issuer.key_label)
        materials.append(_tsa(ceremony, hierarchy.tsa, issuer.certificate, issuer_key, urls, now, linter))
    return materials


def _ocsp_signer(
    ceremony: _Ceremony,
    name: str,
    spec: CaSpec,
    issuing_cert: x509.Certificate,
    issuing_key: SigningKey,
    now: datetime,
    linter: PkixLinter | None,
) -> CaMaterial:
    label, uri, key = ceremony.new_key(name, "ocsp")
    public = key.key.public_key()
    responder_cn = f"{dict(spec.subject).get('CN', name)} OCSP Responder"
    ocsp_spec = CaSpec(
        subject=(*((k, v) for k, v in spec.subject if k != "CN"), ("CN", responder_cn)),
        validity_days=spec.ocsp_validity_days or 365,
    )
    builder = (
        _ca_builder(ext.ca_subject(ocsp_spec), issuing_cert.subject, public, ocsp_spec, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(("digital_signature",)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(_aki(issuing_cert, public), critical=False)
    )
    return CaMaterial(name, "ocsp", label, uri, lint_and_sign(builder, issuing_key, linter))


def _tsa(
    ceremony: _Ceremony,
    spec: TsaSpec,
    issuing_cert: x509.Certificate,
    issuing_key: SigningKey,
    urls: ext.CaUrls,
    now: datetime,
    linter: PkixLinter | None,
) -> CaMaterial:
    """RFC 3161 section 2.3: EKU id-kp-timeStamping only, critical. Revocation through the issuer's CRL (the
    OCSP responders answer for holder certificates only)."""
    label, uri, key = ceremony.tsa_key()
    public = key.key.public_key()
    days = min(spec.validity_days, (issuing_cert.not_valid_after_utc - now).days)  # never past the issuer
    tsa_spec = CaSpec(subject=spec.subject, validity_days=days)
    crl_dp, aia = ext.distribution_extensions(urls, spec.issuer, ocsp=False)
    builder = (
        _ca_builder(ext.ca_subject(tsa_spec), issuing_cert.subject, public, tsa_spec, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(("digital_signature", "content_commitment")), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(_aki(issuing_cert, public), critical=False)
        .add_extension(crl_dp, critical=False)
        .add_extension(aia, critical=False)
    )
    return CaMaterial(TSA_NAME, "tsa", label, uri, lint_and_sign(builder, issuing_key, linter))


def add_tsa(
    session: TokenSession,
    hierarchy: Hierarchy,
    issuer_certificate: x509.Certificate,
    issuer_key_label: str,
    urls: ext.CaUrls,
    linter: PkixLinter | None,
    label_prefix: str = "koshin-",
) -> CaMaterial | None:
    """Certify a TSA for a hierarchy created before koshin had one (None when the hierarchy declares none).

    The key has the issuing CA's algorithm. A key left under the TSA label by an interrupted run (generated,
    never certified) is certified if it satisfies koshin's key rule, and refused otherwise."""
    if hierarchy.tsa is None:
        return None
    issuer_key = signing_key(session, issuer_key_label)
    ceremony = _Ceremony(session, issuer_key.algorithm, label_prefix, reuse_sound_tsa_key=True)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    try:
        return _tsa(ceremony, hierarchy.tsa, issuer_certificate, issuer_key, urls, now, linter)
    except Exception:
        ceremony.destroy_generated()
        raise
