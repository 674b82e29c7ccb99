from __future__ import annotations

import json
from datetime import date

import pytest

from ca.errors import HolderInvalid
from ca.holder import jpki_date_of_birth, parse_holder

GOOD = {
    "name": "山田 太郎",
    "address": "東京都千代田区霞が関2-1-2",
    "prefecture": "東京都",
    "municipality": "千代田区",
    "date_of_birth": "1990-01-02",
    "sex": "male",
}


def test_parses_a_complete_record() -> None:
    holder = parse_holder(json.dumps(GOOD))
    assert holder.date_of_birth == date(1990, 1, 2)
    assert holder.sex == "1"
    assert holder.card_expires is None


@pytest.mark.parametrize("field", ["name", "address", "prefecture", "municipality", "date_of_birth", "sex"])
def test_missing_field_is_named(field: str) -> None:
    record = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(HolderInvalid, match=field):
        parse_holder(json.dumps(record))


def test_unknown_field_is_refused() -> None:
    with pytest.raises(HolderInvalid, match="my_number"):
        parse_holder(json.dumps({**GOOD, "my_number": "123456789012"}))


def test_not_json() -> None:
    with pytest.raises(HolderInvalid, match="not JSON"):
        parse_holder(b"\xff\xfe{")


@pytest.mark.parametrize(("given", "code"), [("female", "2"), ("F", "2"), ("1", "1"), ("not_known", "0"), ("9", "9")])
def test_sex_codes(given: str, code: str) -> None:
    assert parse_holder(json.dumps({**GOOD, "sex": given})).sex == code


def test_bad_sex_value() -> None:
    with pytest.raises(HolderInvalid, match="sex"):
        parse_holder(json.dumps({**GOOD, "sex": "x"}))


@pytest.mark.parametrize(
    ("born", "encoded"),
    [
        (date(1990, 1, 2), "419900102"),  # Heisei, the example in the domain brief
        (date(1989, 1, 7), "319890107"),  # last day of Showa
        (date(1989, 1, 8), "419890108"),  # first day of Heisei
        (date(2019, 5, 1), "520190501"),  # first day of Reiwa
        (date(1926, 12, 25), "319261225"),
        (date(1912, 7, 29), "119120729"),
    ],
)
def test_jpki_date_of_birth(born: date, encoded: str) -> None:
    assert jpki_date_of_birth(born) == encoded


def test_age_on() -> None:
    holder = parse_holder(json.dumps({**GOOD, "date_of_birth": "2011-06-10"}))
    assert holder.age_on(date(2026, 6, 9)) == 14
    assert holder.age_on(date(2026, 6, 10)) == 15
