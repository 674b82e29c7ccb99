"""Module loading, one logged-in session per token, and every token call behind one process-wide lock.

python-pkcs11 0.10.1 calls ``C_Initialize(NULL)``: the module is told the application will not use threads,
so SoftHSM switches its own mutexes off, and two threads signing on two sessions of one process crash or
hang. koshin therefore serialises every call into a module with one re-entrant lock per module and scales
with processes (each process loads the module and opens its own session).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, ObjectClass, PublicKey
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from hsm import keys
from hsm.errors import (
    HsmError,
    KeyExists,
    KeyGenerationUnsupported,
    KeyNotFound,
    MechanismUnsupported,
    ModuleLoadFailed,
    PinIncorrect,
    TokenNotFound,
    translated,
)
from hsm.keys import KeyAlgorithm
from hsm.signing import SignatureScheme, sign_with
from hsm.uri import KeyRef

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib

_modules: dict[str, tuple[Pkcs11Lib, threading.RLock]] = {}
_modules_guard = threading.Lock()


def load_module(path: str) -> tuple[Pkcs11Lib, threading.RLock]:
    """Load and initialise a PKCS#11 module once per process; return it with its call lock."""
    real = os.path.realpath(path)
    with _modules_guard:
        if real not in _modules:
            if not os.path.exists(real):
                raise ModuleLoadFailed(f"PKCS#11 module not found: {path}")
            try:
                _modules[real] = (pkcs11.lib(real), threading.RLock())
            except pkcs11.exceptions.PKCS11Error as exc:
                raise ModuleLoadFailed(f"cannot load PKCS#11 module {path}: {exc}") from exc
        return _modules[real]


@dataclass(frozen=True)
class KeyObjectInfo:
    """What the key inventory reports about one key object (never a secret value)."""

    label: str
    key_id: bytes
    object_class: str
    key_type: str
    attributes: dict[str, bool | None]


AUDITED_PRIVATE = (
    Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.EXTRACTABLE,
    Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL,
    Attribute.SIGN, Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE,
    Attribute.WRAP_WITH_TRUSTED, Attribute.TRUSTED,
)  # fmt: skip


@dataclass
class _Login:
    """The one logged-in session a process holds per token: PKCS#11 login state is per application."""

    session: Any
    pin_digest: bytes
    users: int


_logins: dict[tuple[str, str], _Login] = {}


class TokenSession:
    """A logged-in read-write session on one token. Thread-safe: every call takes the module lock.

    Several ``TokenSession`` objects on one token in one process share a single PKCS#11 session, since the
    token keeps login state per application (a second C_Login answers CKR_USER_ALREADY_LOGGED_IN without
    checking the PIN). While the token is logged in, a second opener must present the same PIN; the process
    compares SHA-256 digests in constant time and never stores the PIN itself.
    """

    def __init__(
        self,
        module_path: str,
        token_label: str,
        pin: str,
        *,
        can_generate_keys: bool = True,
        accepts_injected_keys: bool = False,
    ) -> None:
        self._lib, self._lock = load_module(module_path)
        self.token_label = token_label
        self.can_generate_keys = can_generate_keys
        self.accepts_injected_keys = accepts_injected_keys
        self._key = (os.path.realpath(module_path), token_label)
        self._keys: dict[str, Any] = {}
        self._closed = False
        self.sign_observer: Callable[[float], None] | None = None  # seconds per signature (service metrics)
        digest = hashlib.sha256(pin.encode()).digest()
        with self._lock:
            login = _logins.get(self._key)
            if login is not None:
                if not hmac.compare_digest(login.pin_digest, digest):
                    raise PinIncorrect(f"login to token {token_label!r}: PIN differs from the active login")
                login.users += 1
            else:
                try:
                    token = self._lib.get_token(token_label=token_label)
                except (pkcs11.exceptions.NoSuchToken, pkcs11.exceptions.MultipleTokensReturned) as exc:
                    raise TokenNotFound(f"no single token labelled {token_label!r}") from exc
                with translated(f"login to token {token_label!r}"):
                    session = token.open(user_pin=pin, rw=True)
                login = _logins[self._key] = _Login(session, digest, 1)
            self._session = login.session

    # -- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release this handle; the last one closes the PKCS#11 session (which logs the token out)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            login = _logins[self._key]
            login.users -= 1
            if login.users == 0:
                del _logins[self._key]
                with translated("close session"):
                    login.session.close()

    def __enter__(self) -> TokenSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def ping(self) -> None:
        """Prove the token answers on this session (C_GenerateRandom): for health checks."""
        with self._lock, translated("ping token"):
            self._session.generate_random(64)

    # -- keys --------------------------------------------------------------------------------------------
    def generate_keypair(self, algorithm: KeyAlgorithm, label: str, *, for_injection: bool = False) -> KeyRef:
        """Generate a key pair on the token with koshin's explicit templates; refuse to reuse a label.

        ``for_injection`` (stations only) makes the private key wrappable by TRUSTED wrapping keys and nothing
        else, so it can be moved into a card; a token whose profile cannot generate keys refuses outright."""
        if not self.can_generate_keys:
            raise KeyGenerationUnsupported(f"token {self.token_label!r} cannot generate key pairs (capability profile)")
        private = keys.injectable_private_template if for_injection else keys.private_template
        with self._lock:
            if self._find(ObjectClass.PRIVATE_KEY, label) is not None:
                raise KeyExists(f"a private key labelled {label!r} already exists on {self.token_label!r}")
            key_id = secrets.token_bytes(16)
            with translated(f"generate {algorithm} key {label!r}"):
                self._session.generate_keypair(
                    keys.key_type(algorithm),
                    keys.key_length(algorithm),
                    public_template=keys.public_template(algorithm, label, key_id),
                    private_template=private(label, key_id),
                )
        return KeyRef(token=self.token_label, label=label, key_id=key_id)

    def hmac_sha256(self, label: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the token's generic secret ``label``, created on first use (256 bits,
        SENSITIVE, never extractable). Used to derive one-time secrets the service never stores."""
        with self._lock:
            key = self._find(ObjectClass.SECRET_KEY, label)
            if key is None:
                with translated(f"generate MAC key {label!r}"):
                    key = self._session.generate_key(
                        pkcs11.KeyType.GENERIC_SECRET,
                        256,
                        template=keys.mac_key_template(label, secrets.token_bytes(16)),
                    )
            with translated(f"HMAC with {label!r}"):
                return bytes(key.sign(data, mechanism=pkcs11.Mechanism.SHA256_HMAC))

    def has_key(self, label: str) -> bool:
        with self._lock:
            return self._find(ObjectClass.PRIVATE_KEY, label) is not None

    def key_ref(self, label: str) -> KeyRef:
        key = self._private(label)
        with self._lock:
            return KeyRef(token=self.token_label, label=label, key_id=bytes(key[Attribute.ID]))

    def algorithm_of(self, label: str) -> KeyAlgorithm:
        public = self._public(label)
        with self._lock, translated(f"read key {label!r}"):
            if public.key_type == pkcs11.KeyType.RSA:
                return KeyAlgorithm.RSA3072 if public.key_length >= 3072 else KeyAlgorithm.RSA2048
            params = bytes(public[Attribute.EC_PARAMS])
        for algorithm in (KeyAlgorithm.P256, KeyAlgorithm.P384):
            if params == encode_named_curve_parameters(algorithm.curve_name):
                return algorithm
        raise MechanismUnsupported(f"key {label!r} is on a curve koshin does not use")

    def public_key_der(self, label: str) -> bytes:
        """SubjectPublicKeyInfo DER of the key pair's public half."""
        public = self._public(label)
        with self._lock, translated(f"read public key {label!r}"):
            if public.key_type == pkcs11.KeyType.RSA:
                numbers = rsa.RSAPublicNumbers(
                    int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(public[Attribute.MODULUS], "big"),
                )
                return numbers.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            return bytes(encode_ec_public_key(public))

    def sign(self, label: str, data: bytes, scheme: SignatureScheme) -> bytes:
        key = self._private(label)
        started = time.perf_counter()
        with self._lock, translated(f"sign with {label!r}"):
            signature = sign_with(key, data, scheme)
        if self.sign_observer is not None:
            self.sign_observer(time.perf_counter() - started)
        return signature

    def delete_key(self, label: str) -> None:
        """Destroy both halves of a key pair (used for demo holder keys and ceremonies that fail midway)."""
        with self._lock, translated(f"delete key {label!r}"):
            for obj in list(self._session.get_objects({Attribute.LABEL: label})):
                obj.destroy()
            self._keys.pop(label, None)

    def key_objects(self) -> list[KeyObjectInfo]:
        """Every key object on the token with the attributes the security audit reads."""
        found: list[KeyObjectInfo] = []
        with self._lock, translated("list key objects"):
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY, ObjectClass.PUBLIC_KEY):
                for obj in self._session.get_objects({Attribute.CLASS: cls}):
                    attrs = (
                        {a.name: _read_bool(obj, a) for a in AUDITED_PRIVATE} if cls != (ObjectClass.PUBLIC_KEY) else {}
                    )
                    found.append(
                        KeyObjectInfo(
                            label=str(obj[Attribute.LABEL]),
                            key_id=bytes(obj[Attribute.ID] or b""),
                            object_class=cls.name,
                            key_type=pkcs11.KeyType(obj[Attribute.KEY_TYPE]).name,
                            attributes=attrs,
                        )
                    )
        return sorted(found, key=lambda k: (k.object_class != "PRIVATE_KEY", k.object_class, k.label))

    @contextmanager
    def locked(self) -> Iterator[Any]:
        """Hold the module lock and yield the raw python-pkcs11 session (security suite, administration)."""
        with self._lock:
            yield self._session

    # -- internals ---------------------------------------------------------------------------------------
    def _find(self, cls: ObjectClass, label: str) -> Any:
        with translated(f"find {label!r}"):
            objs = list(self._session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: label}))
        if len(objs) > 1:
            raise HsmError(f"{len(objs)} {cls.name} objects labelled {label!r}; labels must be unique")
        return objs[0] if objs else None

    def _private(self, label: str) -> Any:
        with self._lock:
            if label not in self._keys:
                key = self._find(ObjectClass.PRIVATE_KEY, label)
                if key is None:
                    raise KeyNotFound(f"no private key labelled {label!r} on {self.token_label!r}")
                self._keys[label] = key
            return self._keys[label]

    def _public(self, label: str) -> PublicKey:
        with self._lock:
            key = self._find(ObjectClass.PUBLIC_KEY, label)
        if key is None:
            raise KeyNotFound(f"no public key labelled {label!r} on {self.token_label!r}")
        return key  # type: ignore[no-any-return]


def _read_bool(obj: Any, attribute: Attribute) -> bool | None:
    try:
        return bool(obj[attribute])
    except pkcs11.exceptions.PKCS11Error:
        return None


def open_token(module_path: str, token_label: str, pin: str) -> TokenSession:
    return TokenSession(module_path, token_label, pin)
