"""Which token the security suite inspects, and small helpers over raw python-pkcs11 objects.

Default: the session SoftHSM token of tests/conftest.py, populated with a full CA hierarchy per key algorithm
(labels ``sec-<alg>-...``), one key generated directly (``sec-direct-p256``) and the audit-checkpoint key
(``sec-audit``).

External: set ``KOSHIN_SECURITY_PKCS11_MODULE``, ``KOSHIN_SECURITY_TOKEN_LABEL`` and
``KOSHIN_SECURITY_TOKEN_PIN`` or ``KOSHIN_SECURITY_TOKEN_PIN_FILE``; the suite then reads that token's
private keys and generates nothing on it except short-lived AES session keys for the wrap tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11.exceptions as p11e
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from ca.extensions import CaUrls
from ca.hierarchy import run_ceremony
from ca.lint import PkixLinter
from ca.profiles import load_profiles
from hsm import KeyAlgorithm, TokenSession, admin
from service.audit.anchor import ensure_audit_key

ENV_MODULE = "KOSHIN_SECURITY_PKCS11_MODULE"
ENV_LABEL = "KOSHIN_SECURITY_TOKEN_LABEL"
ENV_PIN = "KOSHIN_SECURITY_TOKEN_PIN"
ENV_PIN_FILE = "KOSHIN_SECURITY_TOKEN_PIN_FILE"
PREFIX = "sec-"
DIRECT_KEY = f"{PREFIX}direct-p256"
AUDIT_KEY = f"{PREFIX}audit"


@dataclass(frozen=True)
class Target:
    """A token to inspect. The PIN is kept out of repr so no assertion or log line can show it."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    external: bool
    child_env: dict[str, str] = field(repr=False)  # environment for subprocesses that load the module


@dataclass(frozen=True)
class PrivateKey:
    """One private key object: its raw python-pkcs11 handle (use under ``TokenSession.locked()``) and a name."""

    obj: Any = field(repr=False)
    name: str
    key_type: KeyType


def skip_or_fail(message: str) -> None:
    """A missing prerequisite fails under CI and skips elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed (Debian packages softhsm2 / opensc)")
    assert path is not None
    return path


def external_target() -> Target | None:
    """The token named by KOSHIN_SECURITY_* variables, or None when the suite runs on SoftHSM."""
    module = os.environ.get(ENV_MODULE)
    if not module:
        return None
    label = os.environ.get(ENV_LABEL)
    pin = os.environ.get(ENV_PIN)
    pin_file = os.environ.get(ENV_PIN_FILE)
    if not label:
        pytest.fail(f"{ENV_MODULE} is set: set {ENV_LABEL} too")
    if pin is None and pin_file:
        try:
            pin = Path(pin_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            pytest.fail(f"cannot read {ENV_PIN_FILE} ({pin_file}): {exc.strerror}")
    if not pin:
        pytest.fail(f"{ENV_MODULE} is set: set {ENV_PIN} or {ENV_PIN_FILE} (non-empty)")
    return Target(module, label, pin, external=True, child_env=dict(os.environ))


def populate(session: TokenSession) -> None:
    """A CA hierarchy per algorithm plus a directly generated key; idempotent within one token."""
    hierarchy, linter, urls = load_profiles().hierarchy, PkixLinter(), CaUrls("http://127.0.0.1:8000")
    for algorithm in KeyAlgorithm:
        prefix = f"{PREFIX}{algorithm.value}-"
        if not session.has_key(f"{prefix}root"):
            run_ceremony(session, hierarchy, algorithm, urls, linter, label_prefix=prefix)
    if not session.has_key(DIRECT_KEY):
        session.generate_keypair(KeyAlgorithm.P256, DIRECT_KEY)
    ensure_audit_key(session, AUDIT_KEY, KeyAlgorithm.P256)  # as Runtime.init_hierarchy makes it


def describe(obj: Any) -> str:
    """Label, CKA_ID and key type of a key object, for violation messages."""
    try:
        label = str(obj[Attribute.LABEL])
    except p11e.PKCS11Error:
        label = ""
    try:
        key_id = bytes(obj[Attribute.ID]).hex()
    except p11e.PKCS11Error:
        key_id = "?"
    return f"{label!r} (id {key_id or '-'})"


def private_keys(raw_session: Any) -> list[PrivateKey]:
    """Every private key object the logged-in raw session can see. Call under ``TokenSession.locked()``."""
    found = []
    for obj in raw_session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
        found.append(PrivateKey(obj, describe(obj), KeyType(obj[Attribute.KEY_TYPE])))
    return found


@contextmanager
def each_private_key(session: TokenSession) -> Iterator[list[PrivateKey]]:
    """Hold the module lock and yield every private key; fails when there is none (an empty token proves
    nothing)."""
    with session.locked() as raw:
        keys = private_keys(raw)
        assert keys, f"token {session.token_label!r} has no private key objects: nothing was checked"
        yield keys


def softhsm_module() -> str:
    module = admin.find_softhsm()
    if module is None:
        skip_or_fail("SoftHSM2 is not installed (Debian package softhsm2)")
    assert module is not None
    return module
