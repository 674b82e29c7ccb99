"""``koshin whatif`` as an operator runs it: the table, --json, --csv, --set, and a clear error for bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from service.cli.main import app

runner = CliRunner()
KOSHIN = str(Path(sys.executable).parent / "koshin")


def test_the_table_names_every_regime_and_the_sweep() -> None:
    result = runner.invoke(app, ["whatif"])
    assert result.exit_code == 0, result.output
    for regime in ("current-2022", "proposal-15", "proposal-90", "proposal-246", "proposal-280"):
        assert regime in result.output
    assert "25,033.0" in result.output  # Miyazaki FY2025 under current-2022
    assert "against uptake" in result.output


def test_json_and_csv_carry_the_same_numbers(tmp_path: Path) -> None:
    out = tmp_path / "whatif.csv"
    result = runner.invoke(app, ["whatif", "miyazaki", "--json", "--csv", str(out), "--regime", "current-2022",
                                 "--regime", "proposal-280"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["regimes"] == ["current-2022", "proposal-280"]
    assert {a["name"] for a in document["assumptions"]} >= {"minutes.card_renew", "FY2025.card_renewals"}
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 2 * 4
    fy2025 = {r["regime"]: r for r in rows if r["fiscal_year"] == "FY2025"}
    assert float(fy2025["current-2022"]["counter_staff_hours"]) == 25_033.0
    assert {r["regime"]: r["counter_staff_hours"] for r in document["rows"] if r["fiscal_year"] == "FY2025"} == {
        name: float(row["counter_staff_hours"]) for name, row in fy2025.items()
    }
    assert int(fy2025["proposal-280"]["channel:restricted_mail"]) == 25_033


def test_set_changes_an_assumption_and_the_result() -> None:
    result = runner.invoke(app, ["whatif", "--json", "--regime", "current-2022", "--set", "minutes.card_delivery=5"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.output)["rows"] if r["fiscal_year"] == "FY2025")
    assert row["counter_staff_hours"] == round(50_066 * 20 / 60, 2)
    changed = next(a for a in json.loads(result.output)["assumptions"] if a["name"] == "minutes.card_delivery")
    assert changed["source"] == "set on the command line (--set)" and changed["assumed"] is True


def test_bad_input_is_one_line_and_a_non_zero_exit() -> None:
    for args, message in ((["atlantis"], "no what-if scenario 'atlantis'"),
                          (["--set", "counter=3"], "no assumption 'counter'"),
                          (["--regime", "proposal-999"], "no regime 'proposal-999'")):  # fmt: skip
        done = subprocess.run([KOSHIN, "whatif", *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1, done.stdout
        assert message in done.stderr and "Traceback" not in done.stderr
