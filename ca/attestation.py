"""Key attestation, modelled on Android Key Attestation: a device certifies each key its secure element
generates with an attestation certificate, signed by the device's own attestation key, whose certificate a
device maker's attestation CA issued. The leaf carries a key-description extension stating where the key was
made, whether it can leave the device, what it may do and the verifier's challenge.

The extension (a private OID under the UUID arc 2.25, RFC 4122 / X.667; Android's is 1.3.6.1.4.1.11129.2.1.17)::

    KeyDescription ::= SEQUENCE {
        attestationVersion    INTEGER,            -- 1
        attestationChallenge  OCTET STRING,       -- the verifier's nonce
        keyOrigin             INTEGER,            -- Android KeyOrigin: generated(0), derived(1), imported(2)
        purposes              SET OF INTEGER,     -- Android KeyPurpose: sign(2), verify(3), agreeKey(6)
        noExport              BOOLEAN,            -- the private key can never leave the secure element
        securityLevel         INTEGER }           -- Android SecurityLevel: software(0), trustedEnvironment(1),
                                                  -- strongBox(2)

``verify_attestation`` is what the service runs: the chain (leaf, then the device's attestation certificate)
must end in one of the configured maker roots, every certificate in it must be within its validity, the
device certificate must be a CA, and the leaf must attest this very public key as generated on the device,
non-exportable, for signing, under this challenge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from ca.errors import AttestationRefused

KEY_DESCRIPTION_OID = x509.ObjectIdentifier("2.25.131277393217815063958036470154853702371")
VERSION = 1
ORIGIN_GENERATED, ORIGIN_IMPORTED = 0, 2
PURPOSE_SIGN = 2
SECURITY_STRONGBOX = 2


class _Purposes(core.SetOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = core.Integer


class KeyDescription(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [  # noqa: RUF012 - asn1crypto reads the class attribute
        ("attestation_version", core.Integer),
        ("attestation_challenge", core.OctetString),
        ("key_origin", core.Integer),
        ("purposes", _Purposes),
        ("no_export", core.Boolean),
        ("security_level", core.Integer),
    ]


@dataclass(frozen=True)
class Attested:
    """What a verified attestation says about a key."""

    origin: int
    no_export: bool
    purposes: frozenset[int]
    security_level: int
    device: x509.Name  # the subject of the device's attestation certificate


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def key_description(challenge: bytes, origin: int, no_export: bool, purposes: Sequence[int], level: int) -> bytes:
    return bytes(KeyDescription({"attestation_version": VERSION, "attestation_challenge": challenge,
                                 "key_origin": origin, "purposes": list(purposes), "no_export": no_export,
                                 "security_level": level}).dump())  # fmt: skip


def attestation_certificate(
    issuer: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    attested_key: PublicKeyTypes,
    description: bytes,
    now: datetime | None = None,
) -> x509.Certificate:
    """The leaf a device signs for a key it generated (as Android's: fixed subject, the key description)."""
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koshin device key attestation")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(attested_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(minutes=5))
        .not_valid_after(issuer.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.UnrecognizedExtension(KEY_DESCRIPTION_OID, description), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _issued_by(child: x509.Certificate, parent: x509.Certificate, what: str) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        raise AttestationRefused(f"{what} is not signed by its issuer") from None


def _within(certificate: x509.Certificate, now: datetime, what: str) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise AttestationRefused(f"{what} is outside its validity")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _description(leaf: x509.Certificate) -> KeyDescription:
    try:
        raw = leaf.extensions.get_extension_for_oid(KEY_DESCRIPTION_OID).value
    except x509.ExtensionNotFound:
        raise AttestationRefused("the attestation certificate has no key description") from None
    try:
        parsed: KeyDescription = KeyDescription.load(raw.value, strict=True)  # type: ignore[attr-defined]
        parsed.native  # noqa: B018 - decode every field now
    except (ValueError, TypeError) as exc:
        raise AttestationRefused(f"the key description does not decode: {exc}") from None
    return parsed


def verify_attestation(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    public_key: PublicKeyTypes,
    challenge: bytes,
    now: datetime | None = None,
) -> Attested:
    """The attested facts of ``public_key`` when ``chain`` proves them (see the module docstring)."""
    moment = now or datetime.now(UTC)
    if len(chain) != 2:
        raise AttestationRefused(f"an attestation is a leaf and the device's certificate ({len(chain)} given)")
    leaf, device = chain
    root = next((r for r in roots if r.subject == device.issuer), None)
    if root is None:
        raise AttestationRefused("the device's attestation certificate is from no trusted device maker")
    for certificate, what in ((leaf, "the attestation certificate"), (device, "the device certificate"),
                              (root, "the maker root")):  # fmt: skip
        _within(certificate, moment, what)
    _issued_by(device, root, "the device certificate")
    _issued_by(leaf, device, "the attestation certificate")
    if not _is_ca(device) or not _is_ca(root):
        raise AttestationRefused("the device and maker certificates must be CA certificates")
    if _spki(leaf.public_key()) != _spki(public_key):
        raise AttestationRefused("the attestation is for another key than the request's")
    description = _description(leaf)
    if description["attestation_version"].native != VERSION:
        raise AttestationRefused(f"key description version {description['attestation_version'].native}")
    if description["attestation_challenge"].native != challenge:
        raise AttestationRefused("the attestation challenge is not this request's")
    attested = Attested(
        origin=description["key_origin"].native,
        no_export=description["no_export"].native,
        purposes=frozenset(description["purposes"].native),
        security_level=description["security_level"].native,
        device=device.subject,
    )
    if attested.origin != ORIGIN_GENERATED:
        raise AttestationRefused(f"the key was not generated on the device (origin {attested.origin})")
    if not attested.no_export:
        raise AttestationRefused("the key can leave the device (noExport is false)")
    if PURPOSE_SIGN not in attested.purposes:
        raise AttestationRefused("the key is not attested for signing")
    return attested
