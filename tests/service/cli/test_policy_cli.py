"""``koshin policy show`` and ``koshin policy evaluate``, run in-process on the sub-app."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli.policy_commands import app
from service.policy import RegimeNotFound

runner = CliRunner()

COUNTER_RENEWAL = [
    "evaluate",
    "--operation", "card_renew",
    "--channel", "counter_in_person",
    "--role", "municipal_staff",
    "--actor-municipality", "matsuyama",
    "--holder-municipality", "matsuyama",
    "--evidence", "photo_id_document",
    "--evidence", "resident_register_match",
]  # fmt: skip
KIOSK_RENEWAL = [
    "evaluate",
    "--operation", "card_renew",
    "--channel", "kiosk_face_match",
    "--role", "kiosk",
    "--evidence", "auth_pin",
    "--evidence", "face_match_chip_photo",
    "--evidence", "live_face_capture",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_koshin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOSHIN_POLICY", raising=False)
    monkeypatch.delenv("KOSHIN_PROFILES_DIR", raising=False)


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_show_json_is_the_rule_table() -> None:
    table = _json(["show", "--json"])
    assert table["regime"] == "current-2022" and table["base"] is None and table["changes"] == []
    ids = [rule["id"] for rule in table["rules"]]
    assert {f"P{n}" for n in range(1, 14)} <= set(ids)
    p1 = table["rules"][ids.index("P1")]
    assert p1["decision"] == "allow" and p1["assurance"] == "IAL3" and "#15" in p1["basis"]
    assert p1["match"]["operations"] == ["card_issue", "card_renew"]


def test_show_json_lists_a_proposals_changes() -> None:
    table = _json(["show", "--regime", "proposal-246", "--json"])
    assert table["base"] == "current-2022"
    assert [(c["kind"], c["target"], c["rule"]) for c in table["changes"]] == [
        ("insert_before", "P12", "P246-CERT-RENEW"),
        ("insert_before", "P10-ELSEWHERE", "P246-OTHER-PIN"),
        ("insert_before", "P6", "P246-CERT-RENEW-KIOSK"),
        ("insert_before", "P12", "P246-CERT-RENEW-FACE"),
        ("insert_before", "P10-ELSEWHERE", "P246-SIGN-PIN-ONLINE"),
        ("insert_before", "P10-ELSEWHERE", "P246-AUTH-PIN-ONLINE"),
        ("insert_before", "P10-ELSEWHERE", "P246-OTHER-PIN-ONLINE"),
        ("insert_before", "P10-ELSEWHERE", "P246-PIN-OTP"),
    ]
    assert all("#246" in c["because"] for c in table["changes"])


def test_show_text() -> None:
    result = runner.invoke(app, ["show", "--regime", "proposal-90"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "regime proposal-90 (base current-2022, 5 changes)" in result.output
    assert "P90-CONTRACTOR" in result.output and "[R3]" in result.output
    assert "insert_before P3 -> P90-CONTRACTOR" in result.output


def test_evaluate_json_allow() -> None:
    decision = _json([*COUNTER_RENEWAL, "--json"])
    assert decision["allowed"] is True
    assert (decision["rule_id"], decision["assurance"], decision["regime"]) == ("P1", "IAL3", "current-2022")
    assert decision["policy_oid"] == "1.3.6.1.5.5.7.13.3"
    assert decision["conditions"] == []


def test_evaluate_json_deny_then_proposal() -> None:
    denied = _json([*KIOSK_RENEWAL, "--json"])
    assert (denied["allowed"], denied["rule_id"], denied["assurance"], denied["policy_oid"]) == (
        False,
        "P2",
        None,
        None,
    )
    allowed = _json([*KIOSK_RENEWAL, "--regime", "proposal-280", "--json"])
    assert (allowed["rule_id"], allowed["assurance"], allowed["policy_oid"]) == (
        "P280-RENEW",
        "IAL2",
        "1.3.6.1.5.5.7.13.2",
    )


def test_evaluate_reads_koshin_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOSHIN_POLICY", "proposal-15")
    decision = _json([*KIOSK_RENEWAL, "--json"])
    assert (decision["regime"], decision["rule_id"]) == ("proposal-15", "P15-RENEW")


def test_evaluate_holder_flags() -> None:
    args = ["evaluate", "--operation", "phone_cert_issue", "--channel", "online_sign_cert", "--role", "holder_app"]
    args += ["--evidence", "card_sign_certificate", "--evidence", "device_generated_key", "--json"]
    assert _json(args)["rule_id"] == "P11"
    assert _json([*args, "--sign-cert-invalid", "--age", "12"])["rule_id"] == "P11-ELSE"


def test_evaluate_text() -> None:
    result = runner.invoke(app, COUNTER_RENEWAL)
    assert result.exit_code == 0, result.output
    assert "allow by rule P1 at IAL3 (policy 1.3.6.1.5.5.7.13.3) under current-2022" in result.output


def test_regimes_follow_koshin_profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(Path(str(resources.files("profiles"))), profiles)
    (profiles / "policy" / "proposal-15.yaml").unlink()
    monkeypatch.setenv("KOSHIN_PROFILES_DIR", str(profiles))
    assert _json(["show", "--regime", "proposal-90", "--json"])["regime"] == "proposal-90"
    result = runner.invoke(app, ["show", "--regime", "proposal-15"])
    assert isinstance(result.exception, RegimeNotFound)


def test_unknown_regime_raises_the_policy_error() -> None:
    result = runner.invoke(app, ["show", "--regime", "nonesuch"])
    assert result.exit_code != 0
    assert isinstance(result.exception, RegimeNotFound)


def test_unknown_evidence_is_a_usage_error() -> None:
    result = runner.invoke(app, [*COUNTER_RENEWAL, "--evidence", "selfie"])
    assert result.exit_code == 2
