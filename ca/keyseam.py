"""The seam between cryptography's builders and a key held on a token.

cryptography's ``CertificateBuilder.sign``, ``CertificateRevocationListBuilder.sign`` and
``CertificateSigningRequestBuilder.sign`` accept any subclass of its private-key ABCs; these subclasses
forward ``sign()`` to the token and refuse every operation that would need the private value.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ca.errors import KeyNotExportable
from hsm import KeyAlgorithm, SignatureScheme


class TokenSigner(Protocol):
    """What the seam needs from the token layer (``hsm.TokenSession`` satisfies it)."""

    def sign(self, label: str, data: bytes, scheme: SignatureScheme) -> bytes: ...

    def public_key_der(self, label: str) -> bytes: ...

    def algorithm_of(self, label: str) -> KeyAlgorithm: ...


def _refuse(what: str) -> NoReturn:
    raise KeyNotExportable(f"{what} is not possible for a key held on a PKCS#11 token")


def _hash_name(algorithm: Any) -> str:
    if isinstance(algorithm, Prehashed):
        _refuse("signing a pre-hashed digest")
    if isinstance(algorithm, hashes.SHA256):
        return "sha256"
    if isinstance(algorithm, hashes.SHA384):
        return "sha384"
    raise KeyNotExportable(f"hash {getattr(algorithm, 'name', algorithm)} is not offered by koshin")


class TokenRSAPrivateKey(rsa.RSAPrivateKey):
    def __init__(self, signer: TokenSigner, label: str) -> None:
        self._signer, self.label = signer, label
        public = serialization.load_der_public_key(signer.public_key_der(label))
        assert isinstance(public, rsa.RSAPublicKey)  # noqa: S101 - label names an RSA pair by construction
        self._public = public

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        name = _hash_name(algorithm)
        if isinstance(padding_, padding.PKCS1v15):
            scheme = SignatureScheme(f"rsa-pkcs1v15-{name}")
        elif isinstance(padding_, padding.PSS):
            scheme = SignatureScheme(f"rsa-pss-{name}")
        else:
            raise KeyNotExportable(f"padding {padding_.name} is not offered by koshin")
        return self._signer.sign(self.label, data, scheme)

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        _refuse("decryption")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse("reading the private numbers")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        _refuse("serialising the private key")

    def __copy__(self) -> TokenRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> TokenRSAPrivateKey:
        return self


class TokenECPrivateKey(ec.EllipticCurvePrivateKey):
    def __init__(self, signer: TokenSigner, label: str) -> None:
        self._signer, self.label = signer, label
        public = serialization.load_der_public_key(signer.public_key_der(label))
        assert isinstance(public, ec.EllipticCurvePublicKey)  # noqa: S101 - label names an EC pair
        self._public = public

    def sign(
        self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyNotExportable("only ECDSA signatures are offered")
        name = _hash_name(signature_algorithm.algorithm)
        return self._signer.sign(self.label, bytes(data), SignatureScheme(f"ecdsa-{name}"))

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse("key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse("reading the private numbers")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        _refuse("serialising the private key")

    def __copy__(self) -> TokenECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> TokenECPrivateKey:
        return self


TokenPrivateKey = TokenRSAPrivateKey | TokenECPrivateKey


def token_private_key(signer: TokenSigner, label: str) -> TokenPrivateKey:
    """A cryptography private-key object whose every signature is made on the token."""
    if signer.algorithm_of(label).is_rsa:
        return TokenRSAPrivateKey(signer, label)
    return TokenECPrivateKey(signer, label)


def signature_hash(algorithm: KeyAlgorithm) -> hashes.SHA256 | hashes.SHA384:
    """The hash koshin pairs with a key algorithm in certificates and CRLs."""
    return hashes.SHA384() if algorithm is KeyAlgorithm.P384 else hashes.SHA256()
