"""``koshin ca issue-cards``: card requests read from JSON lines, checked against the REST schema, issued as one
batch (service.flows.card_issuance.issue_cards), each outcome the document the REST batch reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from service.api.problems import problem_document
from service.api.schemas import CardIssueIn
from service.db.registry_models import Actor
from service.flows.card_issuance import CardIssueInput, issue_cards
from service.runtime import Runtime


def _parse(line: str) -> CardIssueIn | dict[str, Any]:
    """The request, or the problem document of a line that is not one."""
    try:
        return CardIssueIn.model_validate(json.loads(line))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": [], "msg": str(exc)}]
        return {"type": "/problems/invalid-request", "title": "Request does not match the schema", "status": 422,
                "detail": "see errors", "errors": [{"loc": [str(p) for p in e["loc"]], "msg": str(e["msg"])}
                                                   for e in errors]}  # fmt: skip


def card_batch(rt: Runtime, actor: Actor, lines: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """One batch: ``lines`` are (line number, JSON text); one outcome per line, in order."""
    parsed = [(number, _parse(text)) for number, text in lines]
    valid = [(number, body) for number, body in parsed if isinstance(body, CardIssueIn)]
    inputs = [CardIssueInput(resident_number=b.resident_number, proofing_event_id=b.proofing_event_id,
                             card_number=b.card_number, replaces_card=b.replaces_card,
                             csrs={"signature": b.signature_csr_pem.encode(),
                                   "user-authentication": b.user_authentication_csr_pem.encode()})
              for _, b in valid]  # fmt: skip
    results = dict(zip((n for n, _ in valid), issue_cards(rt, actor, inputs), strict=True)) if inputs else {}
    outcomes: list[dict[str, Any]] = []
    for number, body in parsed:
        if not isinstance(body, CardIssueIn):
            outcomes.append({"line": number, "status": 422, "problem": body})
            continue
        result = results[number]
        if isinstance(result, Exception):
            document = problem_document(result) or {"type": "/problems/internal", "status": 500,
                                                    "detail": f"{type(result).__name__}: {result}"}  # fmt: skip
            outcomes.append({"line": number, "status": document["status"], "problem": document})
            continue
        outcomes.append({"line": number, "status": 201, "card": result.card.number,
                         "signature": result.issued["signature"].record.serial_hex,
                         "user_authentication": result.issued["user-authentication"].record.serial_hex,
                         "revoked_serials": [r.serial_hex for r in result.revoked]})  # fmt: skip
    return outcomes
