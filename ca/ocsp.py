"""The OCSP responder core (RFC 6960): a DER request in, a DER response out. No HTTP, no SQL.

Each issuing CA answers through its delegated responder (the "OCSP signer" of the key ceremony: EKU
OCSPSigning, ``ocsp-nocheck``, issued by that CA), whose key stays on the token: responses are signed through
the same seam as certificates and CRLs (``ca.keyseam``), so no private key is ever held in memory.

The status of a certificate comes from a ``StatusLookup`` supplied by the caller (the service layer reads it
from its store), keyed by the issuer's name and the serial number.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.errors import OcspConfigurationError
from ca.keyseam import signature_hash
from ca.signing import SigningKey

log = logging.getLogger(__name__)

# CertID hash algorithms a request may use (RFC 6960 requires SHA-1; RFC 5019 clients send it).
CERT_ID_HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")
# RFC 8954: Nonce ::= OCTET STRING(SIZE(1..32)); a request with a nonce outside that is malformedRequest.
MAX_NONCE_OCTETS = 32
CLIENT_NONCE_OCTETS = 32  # RFC 8954 section 2.1: requesters use at least 32 octets


class CertStatusKind(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusAnswer:
    """What the store knows about one serial. ``revoked_at`` (and optionally ``reason``) only when REVOKED."""

    kind: CertStatusKind
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if self.kind is CertStatusKind.REVOKED and self.revoked_at is None:
            raise ValueError("a REVOKED answer needs revoked_at")
        if self.kind is not CertStatusKind.REVOKED and (self.revoked_at is not None or self.reason is not None):
            raise ValueError(f"a {self.kind} answer carries no revocation time or reason")


@dataclass(frozen=True)
class OcspIssuer:
    """One issuing CA with its delegated responder, whose key is on the token."""

    name: str
    ca_certificate: x509.Certificate
    responder_certificate: x509.Certificate
    responder_key: SigningKey


StatusLookup = Callable[[str, int], StatusAnswer]


def _utc_seconds(moment: datetime) -> datetime:
    """UTC, whole seconds (GeneralizedTime carries no fraction in RFC 5280/6960 profiles); naive means UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0)


def cert_id_hashes(ca_certificate: x509.Certificate, hash_name: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of RFC 6960 section 4.1.1 for certificates issued by ``ca_certificate``.

    The name hash covers the DER of the CA's subject as encoded in its certificate; the key hash covers the
    contents of the subjectPublicKey BIT STRING (without the unused-bits octet), as OpenSSL computes it.
    """
    tbs = asn1_x509.Certificate.load(ca_certificate.public_bytes(Encoding.DER))["tbs_certificate"]
    key_bits: bytes = tbs["subject_public_key_info"]["public_key"].contents
    if not key_bits or key_bits[0] != 0:
        raise OcspConfigurationError("the CA's subjectPublicKey is not a whole number of octets")
    subject_der: bytes = tbs["subject"].dump()
    return hashlib.new(hash_name, subject_der).digest(), hashlib.new(hash_name, key_bits[1:]).digest()


def _check_issuer(issuer: OcspIssuer) -> None:
    responder, ca_cert = issuer.responder_certificate, issuer.ca_certificate
    try:
        responder.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise OcspConfigurationError(f"{issuer.name}: the responder certificate is not issued by the CA") from exc
    try:
        usages = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        raise OcspConfigurationError(f"{issuer.name}: the responder certificate lacks EKU OCSPSigning")
    if issuer.responder_key.key.public_key() != responder.public_key():
        raise OcspConfigurationError(f"{issuer.name}: the responder key does not match the responder certificate")


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


_CERT_STATUS = {
    CertStatusKind.GOOD: ocsp.OCSPCertStatus.GOOD,
    CertStatusKind.REVOKED: ocsp.OCSPCertStatus.REVOKED,
    CertStatusKind.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass(frozen=True)
class OcspAnswer:
    """An answer and its validity (None for the unsigned ones); ``cached``: a response signed for an earlier
    request with the same status, served again."""

    der: bytes
    this_update: datetime | None = None
    next_update: datetime | None = None
    cached: bool = False


_CacheKey = tuple[str, bytes, bytes, int]  # the CertID: hash algorithm, issuerNameHash, issuerKeyHash, serial


@dataclass
class _Kept:
    """A pre-signed answer, what it was signed for, and whether a request was served from it since."""

    status: StatusAnswer
    answer: OcspAnswer
    issuer: OcspIssuer
    parsed: _Parsed
    used: bool = False


@dataclass(frozen=True)
class _Parsed:
    request: ocsp.OCSPRequest
    algorithm: hashes.HashAlgorithm
    nonce: x509.OCSPNonce | None


class OcspResponder:
    """Answers OCSP requests for a set of issuing CAs; every answer is DER bytes, never an exception.

    - A request that does not parse is answered ``malformedRequest`` (unsigned). cryptography's loader accepts
      only requests for a single certificate, so a request listing several certificates (legal in RFC 6960,
      sent by ``openssl ocsp`` given several ``-cert``) is also answered ``malformedRequest``, and so is a
      CertID hashed with anything but SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512.
    - A request whose CertID names no CA served here (both issuerNameHash and issuerKeyHash must match, under
      the request's hash algorithm), or another CA than the URL's, is answered ``unauthorized`` (unsigned).
    - A failing lookup or token is answered ``internalError`` (unsigned) and logged.
    - Otherwise the answer is ``successful``: a BasicOCSPResponse signed on the token by the CA's delegated
      responder, responderID by key hash, the responder certificate included, thisUpdate = now and
      nextUpdate = now + validity, the CertID echoed as received, and the request's nonce echoed (RFC 8954:
      1 to 32 octets; a request with an empty or longer nonce is ``malformedRequest``).
    Request signatures (optional in RFC 6960) are not checked: the answers are public data.

    Pre-signed answers (RFC 5019): the signed response to a nonce-less request is kept (at most ``cache_entries``,
    the oldest dropped first) and served again to the same CertID while its status is the one it was signed for
    and the response is in the first half of its validity. The status is looked up for every request, as before
    (one indexed read of the certificate row), so a revocation committed by any worker or node is answered at
    once: only the signature is saved, never the look-up. A request with a nonce is always signed afresh.
    """

    def __init__(
        self, issuers: Sequence[OcspIssuer], lookup: StatusLookup, validity: timedelta = timedelta(hours=1),
        cache_entries: int = 20_000,
    ) -> None:  # fmt: skip
        if validity <= timedelta(0):
            raise OcspConfigurationError("the response validity must be positive")
        names = [issuer.name for issuer in issuers]
        if len(set(names)) != len(names):
            raise OcspConfigurationError(f"duplicate issuer names: {names}")
        self._lookup, self._validity = lookup, validity
        self.issuer_names = frozenset(names)
        self._cache: dict[_CacheKey, _Kept] = {}
        self._cache_entries, self._cache_lock = cache_entries, threading.Lock()
        self._by_cert_id: dict[tuple[str, bytes, bytes], OcspIssuer] = {}
        for issuer in issuers:
            _check_issuer(issuer)
            for hash_name in CERT_ID_HASHES:
                name_hash, key_hash = cert_id_hashes(issuer.ca_certificate, hash_name)
                self._by_cert_id[(hash_name, name_hash, key_hash)] = issuer

    def respond(self, request_der: bytes, now: datetime | None = None, *, issuer_name: str | None = None) -> bytes:
        """The DER OCSPResponse answering ``request_der`` at ``now`` (default: the current time). With
        ``issuer_name`` (the CA of the URL path) a request about another CA's certificate is ``unauthorized``."""
        return self.answer(request_der, now, issuer_name=issuer_name).der

    def answer(self, request_der: bytes, now: datetime | None = None, *, issuer_name: str | None = None) -> OcspAnswer:
        """``respond``, with the response's validity and whether it was served from the pre-signed ones."""
        parsed = self._parse(request_der)
        if parsed is None:
            return OcspAnswer(_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
        request = parsed.request
        issuer = self._by_cert_id.get((parsed.algorithm.name, request.issuer_name_hash, request.issuer_key_hash))
        if issuer is None or (issuer_name is not None and issuer.name != issuer_name):
            return OcspAnswer(_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED))
        moment = _utc_seconds(now or datetime.now(UTC))
        key = (parsed.algorithm.name, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
        try:
            status = self._lookup(issuer.name, request.serial_number)
            if parsed.nonce is None and (hit := self._presigned(key, status, moment)) is not None:
                return hit
            signed = OcspAnswer(self._sign(issuer, parsed, status, moment), moment, moment + self._validity)
        except Exception:
            log.exception("OCSP: cannot answer for serial %x of %s", request.serial_number, issuer.name)
            return OcspAnswer(_unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR))
        if parsed.nonce is None:
            with self._cache_lock:
                if len(self._cache) >= self._cache_entries and key not in self._cache:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = _Kept(status, signed, issuer, parsed)
        return signed

    def _presigned(self, key: _CacheKey, status: StatusAnswer, moment: datetime) -> OcspAnswer | None:
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is None or hit.status != status:
            return None
        signed = hit.answer
        assert signed.this_update is not None  # noqa: S101 - only signed answers are kept
        if not signed.this_update <= moment < signed.this_update + self._validity / 2:
            return None
        hit.used = True
        return replace(signed, cached=True)

    def refresh(self, now: datetime | None = None, *, ahead: timedelta = timedelta(minutes=5)) -> int:
        """Sign again, ahead of time, every kept answer that requests used since it was signed and whose half
        validity ends within ``ahead`` (the status read again); drop the unused ones. Run in the background
        (service/publication/ocsp.py), so a requester never waits for the signature. Returns how many were
        signed."""
        moment = _utc_seconds(now or datetime.now(UTC))
        with self._cache_lock:
            due = [
                (k, v)
                for k, v in self._cache.items()
                if v.answer.this_update is not None and v.answer.this_update + self._validity / 2 <= moment + ahead
            ]
        signed = 0
        for key, kept in due:
            if not kept.used:
                with self._cache_lock:
                    self._cache.pop(key, None)
                continue
            try:
                status = self._lookup(kept.issuer.name, key[3])
                der = self._sign(kept.issuer, kept.parsed, status, moment)
            except Exception:
                log.exception("OCSP: cannot sign ahead for serial %x of %s", key[3], kept.issuer.name)
                continue
            with self._cache_lock:
                self._cache[key] = _Kept(status, OcspAnswer(der, moment, moment + self._validity), kept.issuer,
                                         kept.parsed)  # fmt: skip
            signed += 1
        return signed

    @staticmethod
    def _parse(request_der: bytes) -> _Parsed | None:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            try:
                nonce: x509.OCSPNonce | None = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            except x509.ExtensionNotFound:
                nonce = None
        except Exception:  # any parse failure (ValueError, UnsupportedAlgorithm, TypeError) is the client's
            return None
        if algorithm.name not in CERT_ID_HASHES:
            return None
        if nonce is not None and not 1 <= len(nonce.nonce) <= MAX_NONCE_OCTETS:
            return None  # RFC 8954 2.1: a nonce of 0 or more than 32 octets is refused as malformedRequest
        return _Parsed(request, algorithm, nonce)

    def _sign(self, issuer: OcspIssuer, parsed: _Parsed, answer: StatusAnswer, now: datetime) -> bytes:
        request = parsed.request
        revoked = answer.kind is CertStatusKind.REVOKED
        reason = answer.reason if revoked and answer.reason is not x509.ReasonFlags.unspecified else None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=parsed.algorithm,
                cert_status=_CERT_STATUS[answer.kind],
                this_update=now,
                next_update=now + self._validity,
                revocation_time=_utc_seconds(answer.revoked_at) if answer.revoked_at is not None else None,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.responder_certificate)
            .certificates([issuer.responder_certificate])
        )
        if parsed.nonce is not None:
            builder = builder.add_extension(parsed.nonce, critical=False)
        key = issuer.responder_key
        return builder.sign(key.key, signature_hash(key.algorithm)).public_bytes(Encoding.DER)


def ocsp_request_der(
    cert: x509.Certificate,
    issuer_cert: x509.Certificate,
    nonce: bool = True,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A DER OCSPRequest for ``cert`` (CertID under SHA-1 unless ``algorithm`` says otherwise), with a
    32-octet random nonce unless ``nonce`` is False."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer_cert, algorithm or hashes.SHA1())  # noqa: S303
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(secrets.token_bytes(CLIENT_NONCE_OCTETS)), critical=False)
    return builder.build().public_bytes(Encoding.DER)
