"""The what-if model against hand-computed cases, and proof that its numbers come from the regimes' rules."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import yaml

from ca.profiles import load_profiles
from service.policy.regime import load_regime
from service.whatif.analysis import analyse
from service.whatif.errors import ScenarioInvalid, ScenarioNotFound
from service.whatif.result import WhatIf
from service.whatif.scenario import available_scenarios, load_scenario

OIDS = load_profiles().hierarchy.assurance_policies
REGIMES = ["current-2022", "proposal-15", "proposal-90", "proposal-246", "proposal-280"]


def _run(scenario: str = "miyazaki", regimes: list[str] = REGIMES, **values: float) -> WhatIf:
    chosen = load_scenario(scenario).with_values(dict(values))
    return analyse(chosen, [load_regime(name) for name in regimes], OIDS)


def test_miyazaki_fy2025_under_current_2022_is_every_renewal_twice_at_the_counter() -> None:
    row = _run().row("current-2022", "FY2025")
    # seed #280: 50,066 renewals, 15 minutes to apply + 15 to collect, both at the counter under P1 and P13
    assert row.counter_staff_hours == pytest.approx(50_066 * 30 / 60)  # 25,033 hours
    assert row.counter_visits == 2 * 50_066
    assert row.working_days == pytest.approx(25_033 / (10 * 7.75), abs=0.01)
    assert row.by_channel == {"counter_in_person": 2 * 50_066}
    assert row.by_level == {"IAL3": 2 * 50_066}  # two certificates per card, face to face


def test_miyazaki_fy2025_under_proposal_280_moves_the_kiosk_and_online_shares_to_mail() -> None:
    row = _run().row("proposal-280", "FY2025")
    moved = 50_066 * (0.20 + 0.30)  # kiosk + online face match: allowed by P280-RENEW, mailed under P280-MAIL
    assert row.counter_staff_hours == pytest.approx((50_066 - moved) * 30 / 60, abs=0.01)
    assert row.by_channel["restricted_mail"] == round(moved)
    assert row.by_level["IAL2"] == round(2 * moved)  # an unattended remote check stays below face to face


def test_the_routes_are_the_regimes_own_answers() -> None:
    result = _run()
    current = {(r.operation, r.channel): r for r in result.routes["current-2022"]}
    assert current[("card_renew", "online_face_match")].rule_id == "P2"
    assert not current[("card_renew", "online_face_match")].allowed
    assert current[("cert_renew", "online_sign_cert")].rule_id == "P12"
    assert current[("card_renew", "counter_in_person")].rule_id == "P1"
    assert current[("cert_renew", "post_office_in_person")].rule_id == "P7"
    proposal = {(r.operation, r.channel): r for r in result.routes["proposal-280"]}
    assert proposal[("card_renew", "online_face_match")].rule_id == "P280-RENEW"
    assert proposal[("card_renew", "online_face_match")].assurance == "IAL2"


def test_a_key_generating_chip_is_what_moves_certificate_renewal_online_under_proposal_246() -> None:
    today = _run("special-ward", ["proposal-246"]).row("proposal-246", "FY2025")
    assert "online_sign_cert" not in today.by_channel  # P12: the card chip cannot make keys
    chip = _run("special-ward", ["proposal-246"], key_generating_chip=1).row("proposal-246", "FY2025")
    assert chip.by_channel["online_sign_cert"] == round(35_000 * 0.10)
    assert chip.counter_staff_hours == pytest.approx(today.counter_staff_hours - 35_000 * 0.10 * 15 / 60)
    assert chip.by_level == {"IAL3": 70_000}  # derived from the card's signature certificate: still IAL3


def test_the_sweep_runs_from_all_at_the_counter_to_all_who_may_leave() -> None:
    result = _run()
    current = [p.counter_staff_hours for p in result.sweep if p.regime == "current-2022"]
    assert current == [pytest.approx(25_033.0)] * 11  # nothing may leave the counter in 2022
    proposal = [p for p in result.sweep if p.regime == "proposal-280"]
    assert [p.uptake for p in proposal] == pytest.approx([i / 10 for i in range(11)])
    hours = [p.counter_staff_hours for p in proposal]
    assert hours[0] == pytest.approx(25_033.0) and all(a > b for a, b in itertools.pairwise(hours))
    # at 100 %: the kiosk and online shares (0.5 of 0.7 given) mail, the rest (sign cert, post office, outreach)
    # are refused card renewal there and come back to the counter
    assert hours[-1] == pytest.approx(25_033.0 * (0.2 / 0.7), abs=0.5)


def test_a_regime_without_a_counter_rule_refuses_and_says_so(tmp_path: Path) -> None:
    shutil.copytree(Path(__file__).parents[3] / "profiles" / "policy", tmp_path, dirs_exist_ok=True)
    regime = yaml.safe_load((tmp_path / "current-2022.yaml").read_text(encoding="utf-8"))
    regime["name"] = "no-counter"
    regime["rules"] = [r for r in regime["rules"] if r["id"] != "P1"]
    (tmp_path / "no-counter.yaml").write_text(yaml.safe_dump(regime, allow_unicode=True), encoding="utf-8")
    row = analyse(load_scenario("miyazaki"), [load_regime("no-counter", tmp_path)], OIDS).row("no-counter", "FY2025")
    assert row.refused == 50_066 and row.counter_staff_hours == 0 and row.certificates == 0


def test_every_shipped_scenario_loads_and_lists_its_sources() -> None:
    assert {"miyazaki", "special-ward", "matsuyama", "national"} <= set(available_scenarios())
    for name in available_scenarios():
        listed = load_scenario(name).listed()
        assert listed and all(a.source for a in listed)
        assert any(not a.assumed for a in listed)  # the demand itself is sourced


def test_bad_names_are_errors_not_new_numbers() -> None:
    with pytest.raises(ScenarioNotFound, match=r"known: .*miyazaki"):
        load_scenario("atlantis")
    with pytest.raises(ScenarioNotFound):
        load_scenario("routes")
    with pytest.raises(ScenarioInvalid, match="no assumption 'counter'"):
        load_scenario("miyazaki").with_values({"counter": 3})
    with pytest.raises(ScenarioInvalid, match="more than every holder"):
        analyse(
            load_scenario("miyazaki").with_values({"uptake.kiosk_face_match": 0.9}), [load_regime("current-2022")], OIDS
        )
