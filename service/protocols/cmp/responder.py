"""The CMP responder of each issuing CA: a token key and a ``cmp-responder`` certificate (EKU id-kp-cmcRA,
digitalSignature, no subjectAltName) issued by that CA, which signs CMP responses that cannot be MAC-protected
(RFC 9483 §3.1: a PKI management entity protects with a certificate whose EKU is cmcRA or cmcCA).

The issuing CA's own key keeps to keyCertSign/cRLSign, and the OCSP signer's to OCSP, so neither signs CMP
messages. ``provision_responders`` makes the key pairs and their certificates at provisioning (``koshin init``
and every start, before any worker serves): requests only read the current certificate (``responder``) and
never issue one. The certificates go through the issuance pipeline like every other (intent recorded before
the token signs, audited, answered by koshin's OCSP responder). A certificate is renewed, for the same key,
within 30 days of its end, at the next start; the one it replaces is revoked as superseded in the same
transaction. Clients trust it through the hierarchy (``openssl cmp -trusted root.pem``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from cryptography.x509.oid import NameOID

from ca.errors import CaNotInitialised
from ca.extensions import ServerNames
from ca.keyseam import TokenPrivateKey, token_private_key
from ca.server import prepare_server_certificate
from service.db.issuance_store import Spend
from service.flows.pipeline import PROVISIONING, Order, Plan

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger("koshin.cmp")
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


def rekey(rt: Runtime, issuer: str) -> x509.Certificate:
    """After the responder certificate of ``issuer`` was revoked: destroy its key, make a new one on the token
    and certify it (service/rekey.py)."""
    label = key_label(rt, issuer)
    if rt.session.has_key(label):
        rt.session.delete_key(label)
    rt.session.generate_keypair(rt.authority().issuers[issuer].signing.algorithm, label)
    return _certify(rt, issuer)


def responder(rt: Runtime, issuer: str) -> Responder:
    """The responder of ``issuer``, as provisioned. A request never issues one: a certificate due for renewal
    is still used (and renewed at the next start); a missing or expired one is CaNotInitialised."""
    ca = rt.authority().issuers[issuer]
    certificate = _current(rt, issuer)
    if certificate is None or certificate.not_valid_after_utc <= datetime.now(UTC):
        raise CaNotInitialised(f"the CMP responder of {issuer!r} has no current certificate: run `koshin init`")
    if _due(certificate, ca.certificate):
        log.warning("the CMP responder certificate of %s ends %s: restart or run `koshin init` to renew it",
                    issuer, certificate.not_valid_after_utc)  # fmt: skip
    root = next(c for c in rt.chain() if c.subject == c.issuer)
    return Responder(token_private_key(rt.session, key_label(rt, issuer)), certificate, (ca.certificate, root))


def _current(rt: Runtime, issuer: str) -> x509.Certificate | None:
    records = [r for r in rt.repo.certificates("issued", PROFILE) if r.issuer == issuer]
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
    """Issue a responder certificate for the token key through the pipeline; the older ones of ``issuer`` are
    superseded in its outcome transaction."""
    label = key_label(rt, issuer)
    if not rt.session.has_key(label):
        raise CaNotInitialised(f"the CMP responder key {label!r} of {issuer!r} is missing: run `koshin init`")
    authority = rt.authority()
    ca_name = authority.issuers[issuer].certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    names = ServerNames(dns=(), common_name=f"{ca_name!s} CMP responder")
    public_key = load_der_public_key(rt.session.public_key_der(label))
    older = tuple(int(r.serial_hex, 16) for r in rt.repo.certificates("issued", PROFILE) if r.issuer == issuer)
    order = Order(lambda ca: prepare_server_certificate(ca, PROFILE, public_key, names, issuing_ca=issuer))  # type: ignore[arg-type]
    return (
        rt.pipeline()
        .issue(Plan(PROVISIONING, Spend(), (order,), supersede=older, channel="provisioning"))
        .only.certificate
    )
