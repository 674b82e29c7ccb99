"""``POST /v1/card-issuances/batch``: a central issuing station's batch of card requests, each on its own
proofing event, through the one pipeline with the writes of the whole batch in two transactions; each item's
outcome is the single request's, and one bad item fails alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509

import service.db.unit as unit
from service.cli.card_batch import card_batch
from service.db.audit_log import AuditEntry, append_all
from tests.support.api_world import Api
from tests.support.requests import counter_event, csr_pem, software_key


def _item(api: Api, resident: str, event_id: str, card: str | None = None) -> dict[str, Any]:
    return {"resident_number": resident, "proofing_event_id": event_id, "card_number": card or api.card_of(resident),
            "signature_csr_pem": csr_pem(software_key()),
            "user_authentication_csr_pem": csr_pem(software_key())}  # fmt: skip


def _writes_by(monkeypatch: pytest.MonkeyPatch, actor: str) -> list[list[AuditEntry]]:
    """The audit entries of every write transaction from now on that appends any for ``actor``."""
    seen: list[list[AuditEntry]] = []
    original = append_all

    def counted(session: Any, entries: Sequence[AuditEntry], at: Any = None) -> int:
        if any(e.actor == actor for e in entries):
            seen.append(list(entries))
        return original(session, entries, at)

    monkeypatch.setattr(unit, "append_all", counted)
    return seen


def test_a_batch_issues_each_good_item_and_fails_each_bad_one_alone(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    good = [api.new_resident() for _ in range(3)]
    events = [counter_event(api, r, "card_issue") for r in good]
    spent_twice = _item(api, good[0], events[0]["id"])  # the first item's event again: spent in this batch
    unknown = {**_item(api, good[1], events[1]["id"]), "resident_number": "NOPE-0000"}
    bad_csr = {**_item(api, good[2], events[2]["id"]), "signature_csr_pem": "not a CSR"}
    items = [_item(api, r, e["id"]) for r, e in zip(good[:2], events[:2], strict=True)]
    writes = _writes_by(monkeypatch, "operator")
    response = api.post("/v1/card-issuances/batch", "ca_operator", {"items": [*items, spent_twice, unknown, bad_csr]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["issued"], body["failed"]) == (2, 3)
    assert [i["index"] for i in body["items"]] == [0, 1, 2, 3, 4]
    assert [i["status"] for i in body["items"]] == [201, 201, 409, 404, 400]
    assert body["items"][2]["problem"]["type"] == "/problems/proofing-event-unusable"
    assert body["items"][3]["problem"]["type"] == "/problems/not-found"
    assert body["items"][4]["problem"]["type"] == "/problems/csr-invalid"
    # The intents of every item in one transaction, every outcome in the other, each record under its item's rule.
    assert [sorted({e.action for e in w} - {"proofing.use"}) for w in writes] == [
        ["certificate.intent"],
        ["card.superseded", "certificate.issue"][1:],
    ]
    rules = {e["decision"]["rule_id"] for e in events}
    assert {e.rule_id for w in writes for e in w} <= rules

    for item, resident in zip(body["items"][:2], good[:2], strict=True):
        result = item["result"]
        assert result["card"]["number"] == api.card_of(resident)
        for credential in ("signature", "user_authentication"):
            pem = result[credential]["certificate_pem"]
            assert x509.load_pem_x509_certificate(pem.encode()).serial_number == int(result[credential]["serial"], 16)
            assert api.client.get(f"/v1/certificates/{result[credential]['serial']}",
                                  headers=api.as_("ca_operator")).json()["status"] == "issued"  # fmt: skip
        serial = result["signature"]["serial"]
        issue = [r for r in api.runtime.repo.audit_records(0, 1_000_000)
                 if r.action == "certificate.issue" and r.object == serial]  # fmt: skip
        assert len(issue) == 1 and issue[0].actor == "operator" and issue[0].rule_id == events[0]["decision"]["rule_id"]

    # The third resident's event was never spent (its item failed before any write): a single request uses it.
    single = api.post("/v1/card-issuances", "ca_operator", _item(api, good[2], events[2]["id"]))
    assert single.status_code == 201, single.text


def test_a_batch_is_for_the_central_station_and_is_bounded(api: Api) -> None:
    resident = api.new_resident()
    event = counter_event(api, resident, "card_issue")
    item = _item(api, resident, event["id"])
    staff = api.post("/v1/card-issuances/batch", "municipal_staff", {"items": [item]})
    assert staff.status_code == 403 and staff.json()["type"] == "/problems/role-forbidden"
    assert api.post("/v1/card-issuances/batch", "ca_operator", {"items": []}).status_code == 422
    too_many = api.post("/v1/card-issuances/batch", "ca_operator", {"items": [item] * 101})
    assert too_many.status_code == 422, too_many.text


def test_the_station_command_reports_every_line_in_order(api: Api) -> None:
    """``koshin ca issue-cards``'s batch: one outcome per JSON line, a malformed line failing alone."""
    resident = api.new_resident()
    event = counter_event(api, resident, "card_issue")
    good = json.dumps(_item(api, resident, event["id"]))
    lines = [(1, good), (2, "{not json"), (3, json.dumps({"resident_number": resident})), (4, good)]
    operator = api.runtime.repo.actor_by_token(api.tokens["ca_operator"])
    assert operator is not None
    outcomes = card_batch(api.runtime, operator, lines)
    assert [(o["line"], o["status"]) for o in outcomes] == [(1, 201), (2, 422), (3, 422), (4, 409)]
    assert outcomes[0]["card"] == api.card_of(resident) and len(outcomes[0]["signature"]) == 40
    assert outcomes[2]["problem"]["type"] == "/problems/invalid-request" and outcomes[2]["problem"]["errors"]
    assert outcomes[3]["problem"]["type"] == "/problems/proofing-event-unusable"  # the same event, spent by line 1
