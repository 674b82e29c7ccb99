"""``koshin bench --quick`` once, as an operator runs it, so the harness cannot rot. No timing assertions:
figures on a shared machine are not test outcomes; that every scenario ran and reported is."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_softhsm
from tests.support.cli import KOSHIN
from tests.support.helpers import run

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

SCENARIOS = ("token-sign", "issue", "rest", "peer-openssl", "peer-cfssl", "ocsp", "crl", "wave", "nodes", "incident")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path, str]:
    require_softhsm()
    base = tmp_path_factory.mktemp("bench")
    operator_home = base / "operator-home"  # must stay untouched: the bench makes its own temporary home
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOSHIN_", "SOFTHSM2_CONF"))}
    env.update(KOSHIN_HOME=str(operator_home), COLUMNS="200")
    out = base / "bench.jsonl"
    result = run([KOSHIN, "bench", "--quick", "--json", str(out)], env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return lines, operator_home, result.stdout


def test_every_scenario_reports_figures_or_says_why_not(quick_run: tuple[list[dict[str, Any]], Path, str]) -> None:
    lines, _, stdout = quick_run
    results = [line for line in lines if line["kind"] == "result"]
    skips = {line["scenario"]: line["reason"] for line in lines if line["kind"] == "skip"}
    assert not [reason for reason in skips.values() if reason.startswith("failed")], skips
    missing_tools = {"peer-cfssl": shutil.which("cfssl") is None, "postgresql": shutil.which("pg_ctl") is None}
    for scenario in SCENARIOS:
        measured = [r for r in results if r["scenario"] == scenario]
        assert measured or scenario in skips, f"{scenario}: neither figures nor a skip message"
        if os.environ.get("CI") and not missing_tools.get(scenario, False):
            assert measured, f"{scenario} skipped under CI: {skips.get(scenario)}"
    assert "koshin bench: figures" in stdout and "ratios against the targets" in stdout


def test_figures_are_medians_of_at_least_three_runs(quick_run: tuple[list[dict[str, Any]], Path, str]) -> None:
    lines, _, _ = quick_run
    run_line = next(line for line in lines if line["kind"] == "run")
    assert run_line["quick"] is True and run_line["cores"] and run_line["versions"]["python-pkcs11"]
    for result in (line for line in lines if line["kind"] == "result"):
        once = result["scenario"] in ("wave", "incident")
        if once or (result["name"].endswith("RSS") and result["scenario"] == "rest"):
            continue  # one wave and one incident per run; the service's RSS is read once after its load
        assert result["runs"] >= 3, result
        assert result["min"] <= result["median"] <= result["max"], result


def test_ratios_name_both_sides_and_a_target(quick_run: tuple[list[dict[str, Any]], Path, str]) -> None:
    lines, _, _ = quick_run
    ratios = [line for line in lines if line["kind"] == "ratio"]
    names = {r["name"] for r in ratios}
    assert any(n.startswith("issue lint off vs token") for n in names), names
    assert any(n.startswith("lint on vs lint off") for n in names), names
    assert any(n.startswith("ocsp cached vs fresh") for n in names), names
    for ratio in ratios:
        assert ratio["numerator"] and ratio["denominator"] and ratio["target"] > 0


def test_the_operators_home_is_never_touched(quick_run: tuple[list[dict[str, Any]], Path, str]) -> None:
    _, operator_home, _ = quick_run
    assert not operator_home.exists()
