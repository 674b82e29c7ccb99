"""`koshin demo` from a fresh embedded home: every flow against a live service it starts itself, and every
certificate in its table checked with openssl and the live OCSP responder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_softhsm
from tests.support.cli import Cli

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    require_softhsm()
    cli = Cli(tmp_path / "home")
    cli.ok("init")
    out = cli.ok("demo")
    for needle in ("allow (P1)", "allow (P11)", "allow (P11-REKEY)", "allow (P8)", "deny (P3)", "deny (P2)",
                   "allow (P15-RENEW)", "allow (P280-RENEW)", "allow (P90-CONTRACTOR)"):  # fmt: skip
        assert needle in out, needle
    assert "FAIL" not in out
    assert out.count("openssl OK, OCSP revoked") == 3  # card + phone signature (address), superseded phone auth
    assert out.count("openssl OK, OCSP good") == 2
