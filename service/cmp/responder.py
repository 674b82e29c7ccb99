"""The CMP responder of each issuing CA: a token key and a ``cmp-responder`` certificate (EKU id-kp-cmcRA,
digitalSignature, no subjectAltName) issued by that CA, which signs CMP responses that cannot be MAC-protected
(RFC 9483 §3.1: a PKI management entity protects with a certificate whose EKU is cmcRA or cmcCA).

The issuing CA's own key keeps to keyCertSign/cRLSign, and the OCSP signer's to OCSP, so neither signs CMP
messages. ``provision_responders`` makes the key pairs and their certificates in ``Runtime.init_hierarchy``
(``koshin init`` and every start, before any worker): workers never generate keys. The certificates go through
``CertificateAuthority.issue_prepared`` like every other (intent recorded before the token signs, audited,
answered by koshin's OCSP responder). A certificate is renewed, for the same key, within 30 days of its end,
and the one it replaces is revoked as superseded. Clients trust it through the hierarchy
(``openssl cmp -trusted root.pem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from cryptography.x509.oid import NameOID
from sqlmodel import Session, col, select

from ca.errors import CaNotInitialised
from ca.extensions import ServerNames
from ca.keyseam import TokenPrivateKey, token_private_key
from ca.server import prepare_server_certificate
from service.db.models import CertificateRecord
from service.errors import RevocationRefused

if TYPE_CHECKING:
    from service.runtime import Runtime

PROFILE = "cmp-responder"
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class Responder:
    key: TokenPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA, then root


def key_label(rt: Runtime, issuer: str) -> str:
    return f"{rt.settings.key_label_prefix}{issuer}-cmp"


def provision_responders(rt: Runtime) -> list[x509.Certificate]:
    """Give every issuing CA the profile lists a responder key and a current certificate for it; what exists
    and still fits is kept (a second run changes nothing). Returns the certificates it issued."""
    if PROFILE not in rt.profiles.servers:
        return []  # an operator's profile set without a CMP responder: CMP answers go unsigned
    issued: list[x509.Certificate] = []
    for issuer in rt.profiles.server(PROFILE).issuing_cas:
        ca = rt.authority().issuers[issuer]
        label = key_label(rt, issuer)
        if not rt.session.has_key(label):
            rt.session.generate_keypair(ca.signing.algorithm, label)
        current = _current(rt, issuer)
        spki_der = rt.session.public_key_der(label)
        if current is None or _due(current, ca.certificate) or _spki_der(current) != spki_der:
            issued.append(_certify(rt, issuer))
    return issued


def responder(rt: Runtime, issuer: str) -> Responder:
    """The responder of ``issuer``; its certificate is renewed first when due (the key is never made here)."""
    ca = rt.authority().issuers[issuer]
    certificate = _current(rt, issuer)
    if certificate is None or _due(certificate, ca.certificate):
        certificate = _certify(rt, issuer)
    root = next(c for c in rt.chain() if c.subject == c.issuer)
    return Responder(token_private_key(rt.session, key_label(rt, issuer)), certificate, (ca.certificate, root))


def _records(session: Session, issuer: str) -> list[CertificateRecord]:
    """The issued (not revoked) responder certificates of ``issuer``, oldest first."""
    query = (
        select(CertificateRecord)
        .where(CertificateRecord.profile == PROFILE, CertificateRecord.issuer == issuer)
        .where(CertificateRecord.status == "issued")
        .order_by(col(CertificateRecord.id))
    )
    return list(session.exec(query))


def _current(rt: Runtime, issuer: str) -> x509.Certificate | None:
    with Session(rt.repo.engine) as session:
        records = _records(session, issuer)
    if not records or records[-1].certificate_der is None:
        return None
    return x509.load_der_x509_certificate(records[-1].certificate_der)


def _due(certificate: x509.Certificate, ca_certificate: x509.Certificate) -> bool:
    """Within RENEW_BEFORE of its end, unless a new certificate could not end later (the CA's end caps both)."""
    ends = certificate.not_valid_after_utc
    return ends - RENEW_BEFORE <= datetime.now(UTC) and ends < ca_certificate.not_valid_after_utc


def _spki_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _certify(rt: Runtime, issuer: str) -> x509.Certificate:
    """Issue a responder certificate for the token key (recorded and audited), then supersede the older ones."""
    label = key_label(rt, issuer)
    if not rt.session.has_key(label):
        raise CaNotInitialised(f"the CMP responder key {label!r} of {issuer!r} is missing: run `koshin init`")
    authority = rt.authority()
    ca_name = authority.issuers[issuer].certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    names = ServerNames(dns=(), common_name=f"{ca_name!s} CMP responder")
    public_key = load_der_public_key(rt.session.public_key_der(label))
    prepared = prepare_server_certificate(authority, PROFILE, public_key, names, issuing_ca=issuer)  # type: ignore[arg-type]
    certificate = authority.issue_prepared(prepared, rt.repo).certificate
    _supersede_older(rt, issuer, certificate.serial_number)
    return certificate


def _supersede_older(rt: Runtime, issuer: str, newest: int) -> None:
    """Revoke (superseded) the responder certificates of ``issuer`` recorded before ``newest``. When two workers
    renew at once, the later one's certificate stays; revoking one already revoked is no error."""
    from service.flows.revocation import revoke  # service.flows imports service.runtime, which imports this

    with Session(rt.repo.engine) as session:
        records = _records(session, issuer)
    serials = [int(r.serial_hex, 16) for r in records]
    if newest not in serials:
        return  # superseded meanwhile by a newer one
    for serial in serials[: serials.index(newest)]:
        try:
            revoke(rt, None, serial, "superseded")
        except RevocationRefused:
            continue
