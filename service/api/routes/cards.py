"""Card issuance and renewal at a station: keys made at the station, two certificates on one proofing event."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.convert import card_out, certificate_out
from service.api.deps import STAFF, RuntimeDep, require
from service.api.problems import problem_document
from service.api.schemas import CardBatchIn, CardBatchItemOut, CardBatchOut, CardIssueIn, CardIssueOut
from service.db.registry_models import Actor
from service.flows.card_issuance import CardIssueInput, CardIssueResult, issue_card, issue_cards
from service.observability.logs import correlation_id
from service.policy.model import Role

router = APIRouter(prefix="/v1", tags=["cards"])
Stations = Annotated[Actor, Depends(require(STAFF, Role.CA_OPERATOR))]  # counter, or a central issuing station
log = logging.getLogger("koshin.api")
CentralStations = Annotated[Actor, Depends(require(Role.CA_OPERATOR))]  # the batch: a central issuing station only


@router.post("/card-issuances", response_model=CardIssueOut, status_code=201)
def create_card_issuance(body: CardIssueIn, rt: RuntimeDep, actor: Stations) -> CardIssueOut:
    """Issue the signature and user-authentication certificates of a new card from a station's CSRs (the
    station generated the keys and will inject them; the service never sees a private key). With
    ``replaces_card`` the old card is superseded and its certificates revoked as superseded."""
    return _out(issue_card(rt, actor, _input(body)))


@router.post("/card-issuances/batch", response_model=CardBatchOut)
def create_card_issuance_batch(body: CardBatchIn, rt: RuntimeDep, actor: CentralStations) -> CardBatchOut:
    """A central issuing station's batch (proposals 15 and 280: cards made centrally and mailed): each item is a
    card request as ``POST /v1/card-issuances`` takes it, on its own proofing event, decided the same way; the
    writes of the whole batch go in two transactions. Each item's outcome is reported with the status and the
    problem document the single request would have answered: one bad item fails alone."""
    outcomes = issue_cards(rt, actor, [_input(item) for item in body.items])
    items = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Exception):
            document = problem_document(outcome) or _internal(outcome)
            status = document["status"]
            assert isinstance(status, int)  # noqa: S101 - every problem document has its status
            items.append(CardBatchItemOut(index=index, status=status, problem=document))
        else:
            items.append(CardBatchItemOut(index=index, status=201, result=_out(outcome)))
    issued = sum(1 for item in items if item.status == 201)
    return CardBatchOut(issued=issued, failed=len(items) - issued, items=items)


def _internal(exc: Exception) -> dict[str, object]:
    """An item failed by an error the problem table does not know: logged with a correlation id, reported as
    the single request's 500 would be, the other items' outcomes still returned."""
    correlation = correlation_id() or str(uuid.uuid4())
    log.error("batch item failed unexpectedly (%s)", correlation, exc_info=exc)
    return {"type": "/problems/internal", "title": "Internal error", "status": 500,
            "detail": "unexpected error; quote the correlation id", "correlation_id": correlation}  # fmt: skip


def _input(body: CardIssueIn) -> CardIssueInput:
    return CardIssueInput(
        resident_number=body.resident_number,
        proofing_event_id=body.proofing_event_id,
        card_number=body.card_number,
        csrs={
            "signature": body.signature_csr_pem.encode(),
            "user-authentication": body.user_authentication_csr_pem.encode(),
        },
        replaces_card=body.replaces_card,
    )


def _out(result: CardIssueResult) -> CardIssueOut:
    return CardIssueOut(
        card=card_out(result.card),
        signature=certificate_out(result.issued["signature"].record),
        user_authentication=certificate_out(result.issued["user-authentication"].record),
        revoked_serials=[r.serial_hex for r in result.revoked],
    )
