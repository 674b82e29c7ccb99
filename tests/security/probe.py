"""Login probe, run in a fresh process by test_login.py: PKCS#11 login state is per application, so only a
process that has never logged in shows what an unauthenticated caller and a wrong PIN really get.

Reads ``{"module", "token_label", "pin"}`` as JSON on stdin (never argv), prints a JSON report on stdout that
holds no PIN. Steps, in this order: (1) open a session WITHOUT login and list what it sees; (2) make exactly
ONE login attempt with a wrong PIN of the same length; (3) list again without login; (4) log in with the right
PIN (which resets a real token's retry counter) and count the private keys.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pkcs11.exceptions as p11e
from pkcs11 import Attribute, ObjectClass

from hsm import TokenSession
from hsm.session import load_module


def wrong_pin_for(pin: str) -> str:
    """A PIN of the same length and alphabet that differs in its last character."""
    return pin[:-1] + ("0" if pin[-1] != "0" else "1")


def _visible(session: Any) -> dict[str, int]:
    """Object classes a session can see, counted (private keys must be absent without login)."""
    counts: dict[str, int] = {}
    for obj in session.get_objects({}):
        name = ObjectClass(obj[Attribute.CLASS]).name
        counts[name] = counts.get(name, 0) + 1
    counts["PRIVATE_KEY_SEARCH"] = len(list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})))
    return counts


def _attempt(module: str, label: str, pin: str) -> tuple[str, TokenSession | None]:
    try:
        session = TokenSession(module, label, pin)
    except Exception as exc:  # report any outcome; the test decides what is acceptable
        return f"{type(exc).__module__}.{type(exc).__qualname__}", None
    return "ok", session


def run(module: str, label: str, pin: str) -> dict[str, Any]:
    lib, lock = load_module(module)
    report: dict[str, Any] = {}
    with lock:
        anonymous = lib.get_token(token_label=label).open(rw=False)
        report["before_login"] = _visible(anonymous)
        try:
            anonymous.get_key(object_class=ObjectClass.PRIVATE_KEY)
            report["anonymous_get_key"] = "FOUND A PRIVATE KEY"
        except p11e.PKCS11Error as exc:
            report["anonymous_get_key"] = type(exc).__name__
    report["wrong_pin"], wrong = _attempt(module, label, wrong_pin_for(pin))
    if wrong is not None:
        wrong.close()
    with lock:
        report["after_wrong_pin"] = _visible(anonymous)
    report["right_pin"], right = _attempt(module, label, pin)
    if right is not None:
        with right.locked() as raw:
            report["private_keys_after_login"] = len(list(raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})))
        right.close()
    return report


def main() -> None:
    request = json.loads(sys.stdin.read())
    print(json.dumps(run(request["module"], request["token_label"], request["pin"])))


if __name__ == "__main__":
    main()
