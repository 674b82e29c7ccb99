"""What the OpenAPI document says a field takes is what the service takes (issue 15): the rules moved into the
schema answer as the schema says, and the ones it cannot state answer as its descriptions say."""

from __future__ import annotations

import re
from typing import Any

import httpx

from ca.text import repertoire_pattern
from service.flows.serials import SERIAL_PATTERN, parse_serial
from tests.support.api_world import MIYAZAKI, Api

PROBLEM = "application/problem+json"


def _slug(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return response.status_code, str(response.json()["type"]).removeprefix("/problems/")


def _resident(api: Api, **fields: Any) -> httpx.Response:
    body = {"resident_number": "SR-0001", "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": MIYAZAKI, "date_of_birth": "1988-04-12", "sex": "female", **fields}  # fmt: skip
    return api.post("/v1/residents", "municipal_staff", body)


def test_codes_flags_and_dates_are_taken_as_the_schema_says(api: Api) -> None:
    for fields in ({"municipality": f" {MIYAZAKI}"}, {"sex": "Female"}, {"sex": ""}, {"adult_ward": 0},
                   {"date_of_birth": "1899-12-31"}, {"stay_limit": 0}, {"name": " 宮崎"}, {"name": "宮崎\u3000"},
                   {"cards": [{"number": "SRC0001", "issued_on": "1980-01-01"}]}):  # fmt: skip
        assert _slug(_resident(api, **fields)) == (422, "invalid-request"), fields
    evaluate = {"operation": "card_renew", "channel": "counter_in_person", "role": "municipal_staff"}
    assert api.post("/v1/policy/evaluate", "municipal_staff", {**evaluate, "age": 30.0}).status_code == 200
    for wrong in ({"age": "30"}, {"holder_bound": 0}, {"age": True}):
        assert _slug(api.post("/v1/policy/evaluate", "municipal_staff", {**evaluate, **wrong})) == (
            422, "invalid-request"), wrong  # fmt: skip


def test_a_card_issued_before_a_stored_holders_birth_conflicts_with_the_record(api: Api) -> None:
    resident = api.new_resident()  # born 1988-04-12
    response = api.post(f"/v1/residents/{resident}/cards", "municipal_staff",
                        {"number": "BEFORE0001", "issued_on": "1980-01-01"})  # fmt: skip
    assert _slug(response) == (409, "registry-conflict")
    assert "BEFORE0001" in response.json()["detail"] and "1988-04-12" in response.json()["detail"]


def test_the_serial_pattern_is_parse_serials_own() -> None:
    pattern = re.compile(SERIAL_PATTERN)
    for text in ("1", "0x1F", "01:a3:ff", "0" * 50 + "1", "f" * 40):
        assert pattern.match(text) and parse_serial(text) > 0, text
    for text in ("0", "00", "1:", "+5", "1_0", " 5", "f" * 41, "zz"):
        assert not pattern.match(text), text


def test_the_repertoire_pattern_agrees_with_the_text_rule() -> None:
    pattern = re.compile(repertoire_pattern())
    for good in ("宮崎 花子", "髙橋", "\uff41\uff42\uff43", "東京都千代田区一丁目1番1号"):
        assert pattern.fullmatch(good), good
    for bad in (" 宮崎", "宮崎 ", "a,b", "emoji 😀", "tab\there", "\u202ertl", "한국"):
        assert not pattern.fullmatch(bad), bad


def test_405_names_every_method_of_the_path(api: Api) -> None:
    resident = api.new_resident()
    response = api.client.request("DELETE", f"/v1/residents/{resident}", headers=api.as_("municipal_staff"))
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH"}


def test_est_without_credentials_is_401_with_the_basic_challenge(api: Api) -> None:
    response = api.client.post("/.well-known/est/simpleenroll", content=b"MIIB")
    assert _slug(response) == (401, "enrollment-secret-invalid")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_taken_number_is_a_conflict_and_leaves_nothing_half_made(api: Api) -> None:
    taken = api.new_resident()
    card = api.card_of(taken)
    assert _slug(_resident(api, resident_number=taken)) == (409, "registry-conflict")
    fresh = "SR-HALF-0001"
    response = _resident(api, resident_number=fresh, cards=[{"number": "SRNEW0001", "issued_on": "2021-06-01"},
                                                            {"number": card, "issued_on": "2021-06-01"}])  # fmt: skip
    assert _slug(response) == (409, "registry-conflict")
    assert _slug(api.get(f"/v1/residents/{fresh}", "municipal_staff")) == (404, "not-found")  # no resident made
    again = api.post(
        f"/v1/residents/{taken}/cards", "municipal_staff", {"number": "SRNEW0001", "issued_on": "2022-01-01"}
    )
    assert again.status_code == 201, again.text  # the first card of the refused resident was not kept either
