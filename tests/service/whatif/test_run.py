"""``koshin whatif --run N``: the model's mix driven through the live service on a fresh embedded home, the CA
side measured next to the counter side, and the same proportions as the model's (the run checks the model)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from service.cli.whatif_run import allocate
from tests.conftest import require_softhsm
from tests.support.cli import Cli

HOLDERS = 20


@given(st.integers(0, 500), st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=12))
def test_allocation_sums_to_the_total_and_stays_within_one_of_the_exact_share(total: int, weights: list[float]) -> None:
    parts = allocate(total, weights)
    whole = sum(weights)
    assert len(parts) == len(weights)
    if whole <= 0 or total == 0:
        assert parts == [0] * len(weights)
        return
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / whole) < 1


def test_a_scaled_run_through_the_live_service_matches_the_model(tmp_path: Path) -> None:
    require_softhsm()
    cli = Cli(tmp_path / "home")
    cli.ok("init")
    report = tmp_path / "report.html"
    document = json.loads(cli.ok("whatif", "miyazaki", "--run", str(HOLDERS), "--regime", "current-2022",
                                 "--regime", "proposal-15", "--json", "--html", str(report)))  # fmt: skip
    measured = {m["regime"]: m for m in document["measured"]}
    assert set(measured) == {"current-2022", "proposal-15"}
    rows = {r["regime"]: r for r in document["rows"] if r["fiscal_year"] == document["sweep_year"]}
    for regime, m in measured.items():
        row = rows[regime]
        assert m["holders"] == HOLDERS and m["fiscal_year"] == document["sweep_year"]
        assert m["certificates"] == 2 * HOLDERS and m["seconds"] > 0 and m["certificates_per_second"] > 0
        assert set(m["by_channel"]) == set(row["by_channel"]), regime
        for channel, n in m["by_channel"].items():  # the run's share of each channel is the model's, to a holder
            assert abs(n / HOLDERS - row["by_channel"][channel] / row["renewals"]) <= 1 / HOLDERS, (regime, channel)
        for level, n in m["by_level"].items():
            assert abs(n / m["certificates"] - row["by_level"][level] / row["certificates"]) <= 1 / HOLDERS
    assert measured["current-2022"]["by_channel"] == {"counter_in_person": 2 * HOLDERS}  # apply + hand-over
    assert measured["proposal-15"]["by_level"].get("IAL2", 0) > 0  # the remote applications' level
    certificates = json.loads(cli.ok("ca", "list", "--json"))
    holders = [c for c in certificates if c["profile"] in ("signature", "user-authentication")]
    # each holder: a first card's two certificates, superseded by the renewal's two, per regime
    assert len(holders) == 2 * 2 * 2 * HOLDERS
    assert sum(1 for c in holders if c.get("revocation_reason") == "superseded") == 2 * 2 * HOLDERS
    page = report.read_text(encoding="utf-8")
    assert "Measured on the live service" in page and "proposal-15" in page
    cli.ok("audit", "checkpoint")  # integrates the run's records into the tree, then signs
    assert "audit log intact" in cli.ok("audit", "verify")
