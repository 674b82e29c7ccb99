"""EST (RFC 7030) over the issuance flow: CA certificates, CSR attributes and simple enrollment.

An EST CA label is a holder certificate profile (``signature`` or ``user-authentication``); the unlabelled
paths mean the default label, ``user-authentication`` (the profile without personal data). Server profiles
(``tls-server``) are not holder profiles and are never reachable here.

simpleenroll is authenticated by the proofing event itself: HTTP Basic with the event id as user name and its
one-time enrollment secret as password. The certificate is issued on behalf of the actor who recorded the
proofing, and issuance spends the event, so a secret works once.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from pyasn1.codec.der.encoder import encode
from pyasn1.type import univ
from pyasn1_alt_modules import rfc7030  # type: ignore[import-untyped,unused-ignore]

from hsm import KeyAlgorithm
from service.errors import NotFound
from service.flows.enrollment import authenticate_enrollment, event_actor
from service.flows.issuance import IssueInput, issue_certificate
from service.flows.lockout import refuse_if_locked
from service.flows.pipeline import IssuedCertificate
from service.runtime import Runtime

DEFAULT_LABEL = "user-authentication"

_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_CURVES = {KeyAlgorithm.P256: "1.2.840.10045.3.1.7", KeyAlgorithm.P384: "1.3.132.0.34"}
_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3"


def profile_of(rt: Runtime, label: str | None) -> str:
    """The holder profile an EST label names; ``None`` (the unlabelled paths) is the default label."""
    name = label or DEFAULT_LABEL
    if name not in rt.profiles.profiles:
        known = ", ".join(sorted(rt.profiles.profiles))
        raise NotFound(f"no EST CA label {name!r} (known: {known}; unlabelled means {DEFAULT_LABEL})")
    return name


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A DER CMS SignedData with certificates and no signers (the "certs-only" PKCS#7 of RFC 7030 4.1.3)."""
    return pkcs7.serialize_certificates(list(certificates), Encoding.DER)


def ca_certificates(rt: Runtime, profile: str) -> bytes:
    """/cacerts: the root (the trust anchor the client must install) and the issuing CA of ``profile``."""
    issuing_ca = rt.profiles.profile(profile).issuing_ca
    root = rt.ca_record("root", "root")
    issuing = rt.ca_record(issuing_ca, "issuing")
    return certs_only([x509.load_der_x509_certificate(r.certificate_der) for r in (root, issuing)])


def _attribute(oid: str, values: Sequence[str]) -> rfc7030.AttrOrOID:
    item = rfc7030.AttrOrOID()
    attribute = item["attribute"]
    attribute["attrType"] = univ.ObjectIdentifier(oid)
    for i, value in enumerate(values):
        attribute["attrValues"][i] = univ.Any(encode(univ.ObjectIdentifier(value)))
    return item


def _oid(oid: str) -> rfc7030.AttrOrOID:
    item = rfc7030.AttrOrOID()
    item["oid"] = univ.ObjectIdentifier(oid)
    return item


def csr_attributes(rt: Runtime, profile: str) -> bytes:
    """/csrattrs: DER CsrAttrs naming the key types the profile accepts and the signature algorithms to use.

    Nothing about the subject is asked for: subject and extensions come from the registry, never the CSR.
    challengePassword is not requested: the client authenticates with the one-time secret (HTTP Basic)."""
    allowed = rt.profiles.profile(profile).allowed_key_algorithms
    items: list[rfc7030.AttrOrOID] = []
    curves = [_CURVES[a] for a in allowed if a in _CURVES]
    if curves:
        items += [_attribute(_EC_PUBLIC_KEY, curves), _oid(_ECDSA_WITH_SHA256)]
        if KeyAlgorithm.P384 in allowed:
            items.append(_oid(_ECDSA_WITH_SHA384))
    if any(a not in _CURVES for a in allowed):
        items += [_oid(_RSA_ENCRYPTION), _oid(_SHA256_WITH_RSA)]
    attrs = rfc7030.CsrAttrs()
    attrs.extend(items)
    return bytes(encode(attrs))


def enroll(rt: Runtime, profile: str, event_id: str, secret: str, csr_der: bytes) -> IssuedCertificate:
    """/simpleenroll: authenticate the event by its one-time secret, then issue on it as its proofing actor."""
    refuse_if_locked(rt)
    event = authenticate_enrollment(rt, event_id, secret)
    resident = rt.repo.resident_by_id(event.resident_id)
    item = IssueInput(
        csr=csr_der,
        resident_number=resident.resident_number,
        certificate_type=profile,
        proofing_event_id=event.id,
        channel="est",
    )
    return issue_certificate(rt, event_actor(rt, event), item)
