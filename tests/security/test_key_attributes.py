"""Key-handling security suite: every private key on the target token is sensitive and never leaves it.

What a reviewer runs::

    .venv/bin/pytest tests/security                       # the session SoftHSM token, populated by the suite
    KOSHIN_SECURITY_PKCS11_MODULE=/usr/lib/vendor/libpkcs11.so KOSHIN_SECURITY_TOKEN_LABEL=koshin \
    KOSHIN_SECURITY_TOKEN_PIN_FILE=/run/secrets/token.pin .venv/bin/pytest tests/security   # a real token

(``KOSHIN_SECURITY_TOKEN_PIN`` may replace the PIN file. To inspect a ``koshin init`` home's SoftHSM token,
also export ``SOFTHSM2_CONF=$KOSHIN_HOME/softhsm2.conf`` and point the PIN file at ``$KOSHIN_HOME/secrets/user.pin``.)
Against a real token the suite makes exactly ONE wrong PIN attempt (test_login.py), immediately followed by a
successful login, so it cannot lock the token. pkcs11-tool gets the PIN as ``--pin`` (test_pkcs11_tool.py).
Never run it with ``--showlocals``: local variables hold the PIN.

For EVERY private key object the logged-in session can see, this module proves:

* CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL are true, CKA_EXTRACTABLE is false;
* reading CKA_VALUE / CKA_PRIVATE_EXPONENT / CKA_PRIME_1 is refused: RSA keys answer AttributeSensitive for
  PRIVATE_EXPONENT and PRIME_1, other keys for VALUE; an attribute that does not apply to the key type must
  still raise a PKCS11Error and never return bytes;
* wrapping it under a fresh AES session key (CKM_AES_KEY_WRAP_PAD and CKM_AES_KEY_WRAP) is refused, while the
  same wrapping key does wrap an extractable secret key (so the refusal is about the private key);
* CKA_EXTRACTABLE cannot be switched on and CKA_SENSITIVE cannot be switched off (re-read afterwards).

A token with no private key fails the suite: an empty token proves nothing. Each test loops over all keys
and reports every violation by key label, CKA_ID and attribute. On a real token the only objects created are
AES session keys (TOKEN false), destroyed at once; should a token wrongly accept CKA_EXTRACTABLE=true or
CKA_SENSITIVE=false, the test reports it as a violation and immediately sets the safe value back (allowed by
PKCS#11), but CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE of that key would then be false for good.
"""

from __future__ import annotations

from typing import Any

import pkcs11.exceptions as p11e
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from ca.hierarchy import key_label
from ca.profiles import load_profiles
from hsm import KeyAlgorithm, TokenSession
from hsm.key_rules import audit_keys
from tests.security.target import AUDIT_KEY, DIRECT_KEY, PREFIX, Target, each_private_key, skip_or_fail

REQUIRED: dict[Attribute, bool] = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ALWAYS_SENSITIVE: True,
    Attribute.NEVER_EXTRACTABLE: True,
    Attribute.LOCAL: True,
}
SECRET_PARTS = (Attribute.VALUE, Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1)
WRAP_MECHANISMS = (Mechanism.AES_KEY_WRAP_PAD, Mechanism.AES_KEY_WRAP)


def _violations_report(violations: list[str]) -> str:
    return "\n  ".join(["key-handling violations:", *violations])


def _expected_labels() -> set[str]:
    hierarchy = load_profiles().hierarchy
    labels = {DIRECT_KEY, AUDIT_KEY}
    for algorithm in KeyAlgorithm:
        prefix = f"{PREFIX}{algorithm.value}-"
        labels |= {key_label(prefix, "root", "root"), key_label(prefix, "tsa", "tsa")}
        for name in hierarchy.issuing:
            labels |= {key_label(prefix, name, "issuing"), key_label(prefix, name, "ocsp")}
    return labels


def test_target_has_private_keys(target: Target, target_session: TokenSession) -> None:
    with target_session.locked() as raw:
        labels = {str(obj[Attribute.LABEL]) for obj in raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
    assert labels, f"token {target.token_label!r} has no private keys: the suite would prove nothing"
    if not target.external:
        missing = _expected_labels() - labels
        assert not missing, f"the suite's own CA keys are missing from the SoftHSM token: {sorted(missing)}"


def test_audit_checkpoint_key_passes_the_key_audit(target: Target, target_session: TokenSession) -> None:
    """The key that signs audit checkpoints (service/audit/anchor.py) is made like every other: hsm.key_rules finds
    nothing on either half."""
    if target.external:
        pytest.skip("the audit key's label on an external token depends on its installation's prefix")
    entries = [e for e in audit_keys(target_session) if e.key.label == AUDIT_KEY]
    assert sorted(e.key.object_class for e in entries) == ["PRIVATE_KEY", "PUBLIC_KEY"]
    assert [e.violations for e in entries] == [(), ()]


@pytest.mark.parametrize(("attribute", "wanted"), REQUIRED.items(), ids=[a.name for a in REQUIRED])
def test_boolean_key_attributes(target_session: TokenSession, attribute: Attribute, wanted: bool) -> None:
    violations: list[str] = []
    with each_private_key(target_session) as keys:
        for key in keys:
            try:
                seen = key.obj[attribute]
            except p11e.PKCS11Error as exc:
                violations.append(f"{key.name}: CKA_{attribute.name} unreadable ({type(exc).__name__})")
                continue
            if seen is not wanted:
                violations.append(f"{key.name}: CKA_{attribute.name} is {seen!r}, must be {wanted}")
    assert not violations, _violations_report(violations)


def _must_be_sensitive(key_type: KeyType, attribute: Attribute) -> bool:
    if key_type == KeyType.RSA:
        return attribute in (Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1)
    return attribute == Attribute.VALUE  # EC, EdDSA, DSA, DH: the private value is CKA_VALUE


@pytest.mark.parametrize("attribute", SECRET_PARTS, ids=[a.name for a in SECRET_PARTS])
def test_secret_components_cannot_be_read(target_session: TokenSession, attribute: Attribute) -> None:
    violations: list[str] = []
    with each_private_key(target_session) as keys:
        for key in keys:
            sensitive = _must_be_sensitive(key.key_type, attribute)
            try:
                value = key.obj[attribute]
            except p11e.AttributeSensitive:
                continue
            except p11e.PKCS11Error as exc:
                if sensitive:
                    violations.append(
                        f"{key.name} ({key.key_type.name}): reading CKA_{attribute.name} raised "
                        f"{type(exc).__name__}, expected AttributeSensitive"
                    )
                continue
            size = len(value) if isinstance(value, bytes | bytearray | str) else "?"
            violations.append(f"{key.name} ({key.key_type.name}): CKA_{attribute.name} was READABLE ({size} bytes)")
    assert not violations, _violations_report(violations)


def _wrapping_key(raw: Any) -> Any:
    template = {
        Attribute.TOKEN: False,
        Attribute.WRAP: True,
        Attribute.UNWRAP: False,
        Attribute.ENCRYPT: False,
        Attribute.DECRYPT: False,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.LABEL: f"{PREFIX}wrap-probe",
    }
    return raw.generate_key(KeyType.AES, 256, store=False, template=template)


@pytest.mark.parametrize("mechanism", WRAP_MECHANISMS, ids=[m.name for m in WRAP_MECHANISMS])
def test_private_keys_cannot_be_wrapped(target_session: TokenSession, mechanism: Mechanism) -> None:
    violations: list[str] = []
    with each_private_key(target_session) as keys, target_session.locked() as raw:
        wrapping = _wrapping_key(raw)
        try:
            for key in keys:
                try:
                    wrapped = wrapping.wrap_key(key.obj, mechanism=mechanism)
                except p11e.PKCS11Error:
                    continue
                violations.append(f"{key.name}: WRAPPED with {mechanism.name} ({len(wrapped)} bytes left the token)")
        finally:
            wrapping.destroy()
    assert not violations, _violations_report(violations)


@pytest.mark.parametrize("mechanism", WRAP_MECHANISMS, ids=[m.name for m in WRAP_MECHANISMS])
def test_wrap_control_extractable_secret_key_is_wrapped(
    target: Target, target_session: TokenSession, mechanism: Mechanism
) -> None:
    """The same kind of wrapping key and mechanism work on a key that may leave: the refusals are real."""
    with target_session.locked() as raw:
        if mechanism not in raw.token.slot.get_mechanisms():
            message = f"token does not offer {mechanism.name}: its wrap refusal is trivially true"
            if target.external:
                skip_or_fail(message)
            pytest.fail(message)
        wrapping = _wrapping_key(raw)
        secret = raw.generate_key(
            KeyType.AES, 128, store=False, template={Attribute.TOKEN: False, Attribute.EXTRACTABLE: True}
        )
        try:
            wrapped = wrapping.wrap_key(secret, mechanism=mechanism)
        finally:
            secret.destroy()
            wrapping.destroy()
    assert len(wrapped) >= 24


@pytest.mark.parametrize(
    ("attribute", "unsafe", "safe"),
    [(Attribute.EXTRACTABLE, True, False), (Attribute.SENSITIVE, False, True)],
    ids=["EXTRACTABLE-on", "SENSITIVE-off"],
)
def test_protection_cannot_be_relaxed(
    target_session: TokenSession, attribute: Attribute, unsafe: bool, safe: bool
) -> None:
    violations: list[str] = []
    with each_private_key(target_session) as keys:
        for key in keys:
            try:
                key.obj[attribute] = unsafe
            except p11e.PKCS11Error:
                pass
            else:
                violations.append(f"{key.name}: setting CKA_{attribute.name}={unsafe} SUCCEEDED")
                key.obj[attribute] = safe  # put the safe value back at once (PKCS#11 allows this direction)
            seen = key.obj[attribute]
            if seen is not safe:
                violations.append(f"{key.name}: CKA_{attribute.name} reads {seen!r} after the attempt, must be {safe}")
    assert not violations, _violations_report(violations)
