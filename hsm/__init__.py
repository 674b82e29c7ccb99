"""PKCS#11 token access: module loading, sessions, PINs, key templates, key generation, raw signing.

Knows nothing about X.509, HTTP or SQL. Everything the rest of koshin needs is re-exported here.
"""

from hsm.errors import (
    HsmError,
    KeyExists,
    KeyNotFound,
    MechanismUnsupported,
    PinIncorrect,
    PinLocked,
    TokenNotFound,
)
from hsm.keys import KeyAlgorithm
from hsm.session import TokenSession, open_token
from hsm.signing import SignatureScheme
from hsm.uri import KeyRef

__all__ = [
    "HsmError",
    "KeyAlgorithm",
    "KeyExists",
    "KeyNotFound",
    "KeyRef",
    "MechanismUnsupported",
    "PinIncorrect",
    "PinLocked",
    "SignatureScheme",
    "TokenNotFound",
    "TokenSession",
    "open_token",
]
