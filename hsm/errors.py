"""Errors of the token layer. Every error raised by hsm/ derives from HsmError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pkcs11.exceptions as p11e


class HsmError(Exception):
    """Root of the token layer's errors."""


class ModuleLoadFailed(HsmError):
    """The PKCS#11 module could not be loaded or initialised."""


class TokenNotFound(HsmError):
    """No token with the requested label is present."""


class PinIncorrect(HsmError):
    """The token refused the PIN."""


class PinLocked(HsmError):
    """The token has locked the PIN after too many failures."""


class KeyNotFound(HsmError):
    """No key object matches the reference."""


class KeyExists(HsmError):
    """A key object with that label already exists; keys are never overwritten."""


class MechanismUnsupported(HsmError):
    """The token does not offer the mechanism or key type asked for."""


class OperationRefused(HsmError):
    """The token refused an operation on a key (e.g. reading a sensitive attribute, wrapping it)."""


class KeyGenerationUnsupported(HsmError):
    """The token's capability profile says it cannot generate key pairs (the card chip)."""


class PinFormatInvalid(HsmError):
    """The PIN does not have the form the credential requires; the token was not asked."""


class TokenAdminFailed(HsmError):
    """Creating or initialising a token failed."""


_MAP: tuple[tuple[type[Exception], type[HsmError]], ...] = (
    (p11e.PinIncorrect, PinIncorrect),
    (p11e.PinLocked, PinLocked),
    (p11e.PinExpired, PinLocked),
    (p11e.NoSuchToken, TokenNotFound),
    (p11e.NoSuchKey, KeyNotFound),
    (p11e.MechanismInvalid, MechanismUnsupported),
    (p11e.MechanismParamInvalid, MechanismUnsupported),
    (p11e.KeyTypeInconsistent, MechanismUnsupported),
    (p11e.AttributeSensitive, OperationRefused),
    (p11e.AttributeReadOnly, OperationRefused),
    (p11e.KeyUnextractable, OperationRefused),
    (p11e.KeyNotWrappable, OperationRefused),
    (p11e.FunctionRejected, OperationRefused),
    (p11e.PinInvalid, PinIncorrect),
    (p11e.PinLenRange, PinIncorrect),
)


def translate(exc: Exception, context: str) -> HsmError:
    """Map a python-pkcs11 exception to this package's typed error."""
    for source, target in _MAP:
        if isinstance(exc, source):
            return target(f"{context}: {type(exc).__name__}")
    return HsmError(f"{context}: {type(exc).__name__}: {exc}")


@contextmanager
def translated(context: str) -> Iterator[None]:
    """Re-raise python-pkcs11 errors as HsmError subclasses, keeping the cause."""
    try:
        yield
    except HsmError:
        raise
    except p11e.PKCS11Error as exc:
        raise translate(exc, context) from exc


class InvalidKeyUri(HsmError):
    """The text is not a PKCS#11 URI naming a key."""
