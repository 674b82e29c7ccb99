"""The key-handling rule every private key on a koshin token must satisfy, checked attribute by attribute."""

from __future__ import annotations

from dataclasses import dataclass

from hsm.session import KeyObjectInfo, TokenSession

# CKA_* name -> required value for a private key generated on the token (hsm.keys.private_template).
REQUIRED_PRIVATE: dict[str, bool] = {
    "TOKEN": True,
    "PRIVATE": True,
    "SENSITIVE": True,
    "EXTRACTABLE": False,
    "ALWAYS_SENSITIVE": True,
    "NEVER_EXTRACTABLE": True,
    "LOCAL": True,
    "SIGN": True,
    "DECRYPT": False,
    "UNWRAP": False,
    "DERIVE": False,
}


@dataclass(frozen=True)
class KeyAuditEntry:
    key: KeyObjectInfo
    violations: tuple[str, ...]


def audit_entry(info: KeyObjectInfo) -> KeyAuditEntry:
    violations: list[str] = []
    if info.object_class == "PRIVATE_KEY":
        for name, wanted in REQUIRED_PRIVATE.items():
            seen = info.attributes.get(name)
            if seen is not wanted:
                violations.append(f"CKA_{name} is {seen}, must be {wanted}")
    elif info.object_class == "SECRET_KEY":
        for name in ("SENSITIVE",):
            if info.attributes.get(name) is not True:
                violations.append(f"CKA_{name} of a secret key is {info.attributes.get(name)}, must be True")
        if info.attributes.get("EXTRACTABLE") is not False:
            violations.append("secret key is EXTRACTABLE")
    return KeyAuditEntry(key=info, violations=tuple(violations))


def audit_keys(session: TokenSession) -> list[KeyAuditEntry]:
    """Every key object on the token with the rule violations found on it (empty when clean)."""
    return [audit_entry(info) for info in session.key_objects()]
