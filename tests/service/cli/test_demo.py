"""`koshin demo` from a fresh embedded home: every flow against a live service it starts itself, and every
certificate in its table checked with openssl and the live OCSP responder."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.policy import InsertBeforeChange, ReplaceChange, load_regime
from tests.conftest import require_softhsm
from tests.support.cli import Cli

PROPOSALS = ("proposal-15", "proposal-90", "proposal-246", "proposal-280")

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
    asks = out[out.index("the proposals' asks, decided by the policy (dry run)") :]
    for name in PROPOSALS:  # every rule a proposal adds is shown allowed by it (one ask of the seed each)
        for change in load_regime(name).changes:
            if isinstance(change, InsertBeforeChange | ReplaceChange):
                assert f"allow ({change.rule.id})" in asks, change.rule.id
    for rule_id in ("P2", "P3", "P6", "P12", "P10-ELSEWHERE", "P5-MUNICIPALITY", "P7-NOT-DELEGATED", "P13-NO-F2F"):
        assert f"deny ({rule_id})" in asks, rule_id  # and what current-2022 answers each
    assert out.count("openssl OK, OCSP revoked") == 3  # card + phone signature (address), superseded phone auth
    assert out.count("openssl OK, OCSP good") == 2
