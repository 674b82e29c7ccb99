"""The CMP responder of each issuing CA: a token key and a certificate (EKU id-kp-cmcRA, digitalSignature)
issued by that CA, which signs CMP responses that cannot be MAC-protected (RFC 9483 §3.1: a PKI management
entity protects with a certificate whose EKU is cmcRA or cmcCA).

The issuing CA's own key keeps to keyCertSign/cRLSign, and the OCSP signer's to OCSP, so neither signs CMP
messages. The pair is made on first use (not in the ceremony) and its certificate renewed within 30 days of
its expiry; clients trust it through the hierarchy (`openssl cmp -trusted root.pem`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlmodel import Session

from ca import extensions as ext
from ca.keyseam import TokenPrivateKey, token_private_key
from ca.signing import lint_and_sign
from hsm import KeyExists
from service.db.cmp_models import CmpResponder
from service.db.repository import utc
from service.runtime import Runtime

VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")


@dataclass(frozen=True)
class Responder:
    key: TokenPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA, then root


def responder(rt: Runtime, issuer: str) -> Responder:
    label = f"{rt.settings.key_label_prefix}{issuer}-cmp"
    with Session(rt.repo.engine) as session:
        row = session.get(CmpResponder, issuer)
    if row is None or utc(x509.load_der_x509_certificate(row.certificate_der).not_valid_after_utc) - RENEW_BEFORE <= (
        datetime.now(UTC)
    ):
        row = _certify(rt, issuer, label)
    root = next(c for c in rt.chain() if c.subject == c.issuer)
    issuing = rt.authority().issuers[issuer].certificate
    return Responder(token_private_key(rt.session, label), x509.load_der_x509_certificate(row.certificate_der),
                     (issuing, root))  # fmt: skip


def _certify(rt: Runtime, issuer: str, label: str) -> CmpResponder:
    ca = rt.authority().issuers[issuer]
    if not rt.session.has_key(label):
        try:
            rt.session.generate_keypair(ca.signing.algorithm, label)
        except KeyExists:
            time.sleep(0.5)  # another worker made it just now
    public = load_der_public_key(rt.session.public_key_der(label))
    now = datetime.now(UTC).replace(microsecond=0)
    common_name = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    subject = x509.Name(
        [a for a in ca.certificate.subject if a.oid != NameOID.COMMON_NAME]
        + [x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name!s} CMP responder")]
    )
    issuer_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    crl_dp, aia = ext.distribution_extensions(rt.urls, issuer)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(min(now + VALIDITY, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(("digital_signature",)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([CMC_RA, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
        .add_extension(crl_dp, critical=False)
        .add_extension(aia, critical=False)
    )
    certificate = lint_and_sign(builder, ca.signing, rt.linter)
    row = CmpResponder(issuer=issuer, key_label=label, certificate_der=certificate.public_bytes(Encoding.DER),
                       created_at=now)  # fmt: skip
    with Session(rt.repo.engine) as session:
        session.merge(row)
        session.commit()
    return row
