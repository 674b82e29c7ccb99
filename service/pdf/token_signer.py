"""pyHanko's PKCS#11 signer over a koshin token session, and finding the signing key and certificate there.

``PKCS11Signer`` gets the raw python-pkcs11 session of an already logged-in ``hsm.TokenSession`` rather than
opening its own with ``open_pkcs11_session``: that keeps koshin's login rules (one login per token and
process, the device PIN failure counters) and lets every call into the module take koshin's module lock
(python-pkcs11 0.10.1 initialises modules without mutexes; pyHanko calls the token from executor threads).
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, ObjectClass
from pyhanko.sign.pkcs11 import PKCS11Signer

from hsm import TokenSession
from service.pdf.errors import SigningKeyMismatch


class _LockedKey:
    """A python-pkcs11 private key handle whose ``sign`` runs under the token's module lock."""

    def __init__(self, key: Any, token: TokenSession) -> None:
        self._key, self._token = key, token

    def sign(self, data: bytes, **kwargs: Any) -> Any:
        with self._token.locked():
            return self._key.sign(data, **kwargs)


class TokenPkcs11Signer(PKCS11Signer):
    """``PKCS11Signer`` on a koshin ``TokenSession``: object lookups and signing hold the module lock.

    ECDSA keys sign through the raw CKM_ECDSA mechanism on a digest pyHanko computes (SoftHSM 2.6 has no
    CKM_ECDSA_SHA256); RSA keys use CKM_SHA256_RSA_PKCS, the token hashing."""

    def __init__(
        self,
        token: TokenSession,
        key_label: str,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
    ) -> None:
        self._token = token
        with token.locked() as session:
            raw_session = session
        super().__init__(
            raw_session,
            key_label=key_label,
            signing_cert=_asn1(certificate),
            ca_chain=[_asn1(c) for c in chain],
            use_raw_mechanism=not token.algorithm_of(key_label).is_rsa,
        )

    def _load_objects(self) -> None:
        with self._token.locked():
            super()._load_objects()  # type: ignore[no-untyped-call]  # pyHanko's pkcs11 module is untyped

    def _pull_signing_key_handle(self) -> _LockedKey:
        return _LockedKey(super()._pull_signing_key_handle(), self._token)  # type: ignore[no-untyped-call]


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _objects(token: TokenSession, cls: ObjectClass) -> list[tuple[str, bytes, Any]]:
    with token.locked() as session:
        return [
            (str(obj[Attribute.LABEL]), bytes(obj[Attribute.ID] or b""), obj)
            for obj in session.get_objects({Attribute.CLASS: cls})
        ]


def signing_key_label(token: TokenSession, certificate: x509.Certificate | None, key_label: str | None) -> str:
    """The label of the private key to sign with: the one given, the one whose public half is the
    certificate's, or the token's only private key (a card credential holds exactly one)."""
    if key_label is not None:
        return key_label
    labels = [label for label, _, _ in _objects(token, ObjectClass.PRIVATE_KEY)]
    if certificate is not None:
        wanted = _spki(certificate)
        matching = [label for label in labels if token.public_key_der(label) == wanted]
        if len(matching) == 1:
            return matching[0]
        raise SigningKeyMismatch(
            f"{len(matching)} keys on {token.token_label!r} match certificate {certificate.serial_number:040x}"
        )
    if len(labels) != 1:
        raise SigningKeyMismatch(
            f"token {token.token_label!r} holds {len(labels)} private keys: give --key-label or --cert"
        )
    return labels[0]


def token_certificate(token: TokenSession, key_label: str) -> x509.Certificate:
    """The certificate stored on the token next to the key (same CKA_ID, as the station stores it on cards)."""
    key_id = token.key_ref(key_label).key_id
    wanted = token.public_key_der(key_label)
    with token.locked():
        values = [bytes(obj[Attribute.VALUE]) for _, cid, obj in _objects(token, ObjectClass.CERTIFICATE)
                  if cid == key_id]  # fmt: skip
    certs = [c for c in (x509.load_der_x509_certificate(v) for v in values) if _spki(c) == wanted]
    if len(certs) != 1:
        raise SigningKeyMismatch(
            f"{len(certs)} certificates for key {key_label!r} on {token.token_label!r}: give --cert PEM"
        )
    return certs[0]


def check_key_matches(token: TokenSession, key_label: str, certificate: x509.Certificate) -> None:
    if token.public_key_der(key_label) != _spki(certificate):
        raise SigningKeyMismatch(
            f"key {key_label!r} on {token.token_label!r} is not the key of certificate {certificate.serial_number:040x}"
        )
