"""Card issuance and renewal at a station: keys made at the station, two certificates on one proofing event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.convert import card_out, certificate_out
from service.api.deps import STAFF, RuntimeDep, require
from service.api.schemas import CardIssueIn, CardIssueOut
from service.db.registry_models import Actor
from service.flows.card_issuance import CardIssueInput, issue_card
from service.policy.model import Role

router = APIRouter(prefix="/v1", tags=["cards"])
Stations = Annotated[Actor, Depends(require(STAFF, Role.CA_OPERATOR))]  # counter, or a central issuing station


@router.post("/card-issuances", response_model=CardIssueOut, status_code=201)
def create_card_issuance(body: CardIssueIn, rt: RuntimeDep, actor: Stations) -> CardIssueOut:
    """Issue the signature and user-authentication certificates of a new card from a station's CSRs (the
    station generated the keys and will inject them; the service never sees a private key). With
    ``replaces_card`` the old card is superseded and its certificates revoked as superseded."""
    result = issue_card(
        rt,
        actor,
        CardIssueInput(
            resident_number=body.resident_number,
            proofing_event_id=body.proofing_event_id,
            card_number=body.card_number,
            csrs={
                "signature": body.signature_csr_pem.encode(),
                "user-authentication": body.user_authentication_csr_pem.encode(),
            },
            replaces_card=body.replaces_card,
        ),
    )
    return CardIssueOut(
        card=card_out(result.card),
        signature=certificate_out(result.issued["signature"].record),
        user_authentication=certificate_out(result.issued["user-authentication"].record),
        revoked_serials=[r.serial_hex for r in result.revoked],
    )
