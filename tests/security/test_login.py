"""Login fails closed: a wrong PIN is refused by the token and nothing private is visible without login.

Runs tests/security/probe.py in a fresh process (PKCS#11 login state is per application, and this process is
already logged in). Against a real token (KOSHIN_SECURITY_* variables, see test_key_attributes.py) the probe
makes exactly ONE wrong PIN attempt, of the same length as the real PIN, followed at once by a successful
login, which resets the token's retry counter: running the suite cannot lock the token unless its counter
already stands one failure from the limit. Run: ``.venv/bin/pytest tests/security/test_login.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hsm
from hsm import TokenSession
from tests.security import probe
from tests.security.target import Target

PIN_INCORRECT = f"{hsm.PinIncorrect.__module__}.{hsm.PinIncorrect.__qualname__}"


@pytest.fixture(scope="module")
def login_report(target: Target, target_session: TokenSession) -> dict[str, Any]:
    """One probe run per session (target_session first, so the default token already holds keys)."""
    request = json.dumps({"module": target.module, "token_label": target.token_label, "pin": target.pin})
    result = subprocess.run(
        [sys.executable, str(Path(probe.__file__))],
        input=request,
        env=target.child_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"login probe failed (exit {result.returncode}): {result.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_wrong_pin_is_refused_and_the_right_one_still_works(login_report: dict[str, Any]) -> None:
    assert login_report["wrong_pin"] == PIN_INCORRECT, f"wrong PIN gave {login_report['wrong_pin']}"
    assert login_report["right_pin"] == "ok", f"right PIN after one wrong attempt gave {login_report['right_pin']}"
    assert login_report["private_keys_after_login"] > 0, "the logged-in probe saw no private key: proves nothing"


@pytest.mark.parametrize("moment", ["before_login", "after_wrong_pin"])
def test_no_private_key_is_visible_without_login(login_report: dict[str, Any], moment: str) -> None:
    visible = login_report[moment]
    assert visible.get("PRIVATE_KEY", 0) == 0, f"{moment}: an unauthenticated session sees private keys: {visible}"
    assert visible["PRIVATE_KEY_SEARCH"] == 0, f"{moment}: CLASS=PRIVATE_KEY search found keys: {visible}"


def test_unauthenticated_session_has_no_key_to_sign_with(login_report: dict[str, Any]) -> None:
    assert login_report["anonymous_get_key"] == "NoSuchKey", login_report["anonymous_get_key"]


def test_wrong_pin_is_same_length_and_differs() -> None:
    for pin in ("123456", "abcdef0", "x"):
        wrong = probe.wrong_pin_for(pin)
        assert len(wrong) == len(pin) and wrong != pin
