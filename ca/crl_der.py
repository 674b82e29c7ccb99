"""The DER of a CRL (RFC 5280 section 5), written directly: the revoked list of a card-renewal wave or an
incident runs to a million entries, and one cryptography ``RevokedCertificate`` object per entry costs more time
and memory than the entry's 40-odd bytes of DER. The result is byte-for-byte what cryptography's builder makes
for the same contents (tests/bench/test_units.py, tests/ca/test_crl_partition.py).

The revoked list is written in two steps so a partitioned issuer encodes each entry once: ``revoked_body``
turns entries (any iterable: a database stream) into the concatenated entry DER, and ``signed_crl_der`` wraps a
body (a shard's, or every shard's joined, for the complete CRL) into a signed CRL. A shard's issuing
distribution point is encoded by cryptography and spliced in as a critical extension.

The TBSCertList is signed through the key seam like everything else: the token makes the signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ca.keyseam import signature_hash
from ca.signing import SigningKey

if TYPE_CHECKING:
    from ca.crl import RevokedEntry

_REASON_CODES: dict[x509.ReasonFlags, int] = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}
# crlEntryExtensions holding one non-critical reasonCode (2.5.29.21) extension, per reason
_REASON_EXTENSIONS = {
    flag: bytes.fromhex(f"300c300a0603551d1504030a01{code:02x}") for flag, code in _REASON_CODES.items()
}
_NO_EXTENSION = b""
_ALGORITHMS = {  # AlgorithmIdentifier DER by (RSA?, hash name)
    (True, "sha256"): bytes.fromhex("300d06092a864886f70d01010b0500"),
    (True, "sha384"): bytes.fromhex("300d06092a864886f70d01010c0500"),
    (False, "sha256"): bytes.fromhex("300a06082a8648ce3d040302"),
    (False, "sha384"): bytes.fromhex("300a06082a8648ce3d040303"),
}
_OID_CRL_NUMBER = bytes.fromhex("0603551d14")
_OID_AKI = bytes.fromhex("0603551d23")
_OID_IDP = bytes.fromhex("0603551d1c")
_CRITICAL = bytes.fromhex("0101ff")
_TIME_CACHE = 4096  # encoded revocation times kept (a bulk revocation shares one)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def _time(moment: datetime) -> bytes:
    """UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 section 4.1.2.5)."""
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


class RevokedBody:
    """The revokedCertificates entries of one CRL, appended one at a time (no object kept per entry)."""

    __slots__ = ("_times", "count", "der")

    def __init__(self) -> None:
        self.der = bytearray()
        self.count = 0
        self._times: dict[datetime, bytes] = {}

    def add(self, entry: RevokedEntry) -> None:
        serial, revoked_at, reason = entry
        if serial <= 0:
            raise ValueError(f"serial numbers are positive, not {serial}")
        times = self._times
        when = times.get(revoked_at)
        if when is None:
            if len(times) >= _TIME_CACHE:  # a list of distinct times would otherwise keep one per entry
                times.clear()
            when = times[revoked_at] = _time(revoked_at)
        number = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
        extension = _NO_EXTENSION if reason is x509.ReasonFlags.unspecified else _REASON_EXTENSIONS[reason]
        size = len(number)
        body = 2 + size + len(when) + len(extension)
        if body < 0x80:  # every real serial (at most 20 octets): short lengths, written inline
            der = self.der
            der += bytes((0x30, body, 0x02, size)) + number + when + extension
        else:
            integer = b"\x02" + _length(size) + number
            self.der += b"\x30" + _length(len(integer) + len(when) + len(extension)) + integer + when + extension
        self.count += 1


def revoked_body(entries: Iterable[RevokedEntry]) -> RevokedBody:
    body = RevokedBody()
    for entry in entries:
        body.add(entry)
    return body


def crl_der(
    issuer: x509.Certificate,
    signing: SigningKey,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: datetime,
    next_update: datetime,
    *,
    scope: x509.IssuingDistributionPoint | None = None,
) -> bytes:
    """A signed v2 CRL of ``entries`` (see ``signed_crl_der``)."""
    body = revoked_body(entries)
    return signed_crl_der(issuer, signing, [body.der], number, this_update, next_update, scope=scope)


def signed_crl_der(
    issuer: x509.Certificate,
    signing: SigningKey,
    revoked: Sequence[bytes | bytearray],
    number: int,
    this_update: datetime,
    next_update: datetime,
    *,
    scope: x509.IssuingDistributionPoint | None = None,
) -> bytes:
    """A signed v2 CRL: CRL number, authority key identifier and, for a shard, its issuing distribution point
    (critical); ``revoked`` is the entries' DER in pieces (``RevokedBody.der`` of each shard: joined once, into
    the TBS), the list left out when empty as RFC 5280 requires."""
    hash_ = signature_hash(signing.algorithm)
    algorithm = _ALGORITHMS[(signing.algorithm.is_rsa, hash_.name)]
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    extensions = _tlv(0x30, _OID_CRL_NUMBER + _tlv(0x04, x509.CRLNumber(number).public_bytes())) + _tlv(
        0x30, _OID_AKI + _tlv(0x04, aki.public_bytes())
    )
    if scope is not None:
        extensions += _tlv(0x30, _OID_IDP + _CRITICAL + _tlv(0x04, scope.public_bytes()))
    head = _integer(1) + algorithm + issuer.subject.public_bytes() + _time(this_update) + _time(next_update)
    tail = _tlv(0xA0, _tlv(0x30, extensions))
    revoked_length = sum(len(part) for part in revoked)
    revoked_list = (b"\x30", _length(revoked_length), *revoked) if revoked_length else ()
    content_length = len(head) + sum(len(part) for part in revoked_list) + len(tail)
    tbs = b"".join((b"\x30", _length(content_length), head, *revoked_list, tail))
    key = signing.key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hash_)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 - TokenPrivateKey is RSA or EC
        signature = key.sign(tbs, ec.ECDSA(hash_))
    tail_der = algorithm + _tlv(0x03, b"\x00" + signature)
    return b"".join((b"\x30", _length(len(tbs) + len(tail_der)), tbs, tail_der))
