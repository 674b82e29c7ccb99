"""The DER of a complete CRL (RFC 5280 section 5), written directly: the revoked list of a card-renewal wave
runs to a million entries, and one cryptography ``RevokedCertificate`` object per entry costs more time and
memory than the entry's 40-odd bytes of DER. The result is loaded back with cryptography (which parses it
lazily) and is byte-for-byte what cryptography's builder makes for the same contents.

The TBSCertList is signed through the key seam like everything else: the token makes the signature.
"""

from __future__ import annotations

from collections.abc import Sequence
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
_ALGORITHMS = {  # AlgorithmIdentifier DER by (RSA?, hash name)
    (True, "sha256"): bytes.fromhex("300d06092a864886f70d01010b0500"),
    (True, "sha384"): bytes.fromhex("300d06092a864886f70d01010c0500"),
    (False, "sha256"): bytes.fromhex("300a06082a8648ce3d040302"),
    (False, "sha384"): bytes.fromhex("300a06082a8648ce3d040303"),
}


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


def _revoked_list(entries: Sequence[RevokedEntry]) -> bytes:
    times: dict[datetime, bytes] = {}
    parts: list[bytes] = []
    append = parts.append
    for entry in entries:
        when = times.get(entry.revoked_at)
        if when is None:
            when = times[entry.revoked_at] = _time(entry.revoked_at)
        serial = entry.serial
        if serial <= 0:
            raise ValueError(f"serial numbers are positive, not {serial}")
        body = _integer(serial) + when
        if entry.reason is not x509.ReasonFlags.unspecified:
            body += _REASON_EXTENSIONS[entry.reason]
        append(b"\x30" + _length(len(body)) + body)
    content = b"".join(parts)
    return _tlv(0x30, content)


def crl_der(
    issuer: x509.Certificate,
    signing: SigningKey,
    entries: Sequence[RevokedEntry],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A signed, complete v2 CRL: CRL number and authority key identifier, one entry per revocation (with its
    reasonCode unless unspecified); the revoked list is left out when empty, as RFC 5280 requires."""
    hash_ = signature_hash(signing.algorithm)
    algorithm = _ALGORITHMS[(signing.algorithm.is_rsa, hash_.name)]
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    extensions = _tlv(
        0x30,
        _tlv(0x30, bytes.fromhex("0603551d14") + _tlv(0x04, x509.CRLNumber(number).public_bytes()))
        + _tlv(
            0x30,
            bytes.fromhex("0603551d23")
            + _tlv(0x04, x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski).public_bytes()),
        ),
    )
    tbs = _tlv(
        0x30,
        _integer(1)
        + algorithm
        + issuer.subject.public_bytes()
        + _time(this_update)
        + _time(next_update)
        + (_revoked_list(entries) if entries else b"")
        + _tlv(0xA0, extensions),
    )
    key = signing.key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hash_)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 - TokenPrivateKey is RSA or EC
        signature = key.sign(tbs, ec.ECDSA(hash_))
    return _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))
