"""Key algorithms and the explicit templates every key pair is generated with.

python-pkcs11's defaults leave EXTRACTABLE to the token and allow RSA keys to decrypt and unwrap, so koshin
always passes full templates (house style). A private key made here is a token object, private, sensitive,
never extractable, and can only sign.
"""

from __future__ import annotations

import enum
from typing import Any

from pkcs11 import DEFAULT, Attribute, KeyType
from pkcs11.util.ec import encode_named_curve_parameters


class KeyAlgorithm(enum.StrEnum):
    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    P256 = "p256"
    P384 = "p384"

    @property
    def is_rsa(self) -> bool:
        return self in (KeyAlgorithm.RSA2048, KeyAlgorithm.RSA3072)

    @property
    def rsa_bits(self) -> int:
        return {KeyAlgorithm.RSA2048: 2048, KeyAlgorithm.RSA3072: 3072}[self]

    @property
    def curve_name(self) -> str:
        return {KeyAlgorithm.P256: "secp256r1", KeyAlgorithm.P384: "secp384r1"}[self]


RSA_PUBLIC_EXPONENT = b"\x01\x00\x01"


def private_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """The private half: on the token, login-protected, sensitive, never extractable, sign-only."""
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
        Attribute.DERIVE: False,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
    }


def mac_key_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """A generic secret for HMAC on the token: the private template's rules (on the token, sensitive, never
    extractable), plus VERIFY for checking MACs; it can never encrypt, wrap or be read."""
    return private_template(label, key_id) | {Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}


def injectable_private_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """A station-made key meant for a card: sensitive, and extractable ONLY by a TRUSTED wrapping key."""
    template = private_template(label, key_id)
    template[Attribute.EXTRACTABLE] = True
    template[Attribute.WRAP_WITH_TRUSTED] = True
    return template


def injected_private_template(label: str, key_id: bytes) -> dict[Attribute, Any]:
    """The card's copy after unwrapping: sensitive, never extractable again, sign-only.

    python-pkcs11's unwrap_key adds ENCRYPT/VERIFY/WRAP to the template, which SoftHSM refuses for a private
    key (AttributeTypeInvalid); ``DEFAULT`` removes them."""
    template = private_template(label, key_id)
    template.update({Attribute.ENCRYPT: DEFAULT, Attribute.VERIFY: DEFAULT, Attribute.WRAP: DEFAULT})
    return template


def public_template(algorithm: KeyAlgorithm, label: str, key_id: bytes) -> dict[Attribute, Any]:
    """The public half: a token object anyone logged in or not may read; verify-only."""
    template: dict[Attribute, Any] = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.VERIFY: True,
        Attribute.ENCRYPT: False,
        Attribute.WRAP: False,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
    }
    if algorithm.is_rsa:
        template[Attribute.MODULUS_BITS] = algorithm.rsa_bits
        template[Attribute.PUBLIC_EXPONENT] = RSA_PUBLIC_EXPONENT
    else:
        template[Attribute.EC_PARAMS] = encode_named_curve_parameters(algorithm.curve_name)
    return template


def key_type(algorithm: KeyAlgorithm) -> KeyType:
    return KeyType.RSA if algorithm.is_rsa else KeyType.EC


def key_length(algorithm: KeyAlgorithm) -> int:
    return algorithm.rsa_bits if algorithm.is_rsa else 0
