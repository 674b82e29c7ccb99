"""Registry endpoints: import, residents, cards. Attribute changes and lost cards revoke through the flows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from service.api.convert import card_out, resident_out
from service.api.deps import STAFF, RuntimeDep, require
from service.api.schemas import (
    CARD_NUMBER,
    RESIDENT_NUMBER,
    CardOut,
    ImportOut,
    ResidentOut,
    ResidentPatch,
    ResidentUpdateOut,
)
from service.db.registry_models import Actor
from service.flows.registry import check_jurisdiction, import_registry, resident_fields
from service.flows.registry_document import CardIn, RegistryDocument, ResidentIn
from service.flows.revocation import report_card_lost, update_resident
from service.policy.model import Role

router = APIRouter(prefix="/v1", tags=["registry"])
Writers = Annotated[Actor, Depends(require(STAFF, Role.CA_OPERATOR))]
Readers = Annotated[Actor, Depends(require(STAFF, Role.POST_OFFICE_STAFF, Role.CA_OPERATOR, Role.AUDITOR))]
LossReporters = Annotated[Actor, Depends(require(STAFF, Role.HOLDER_APP))]
ResidentNumber = Annotated[str, Path(pattern=RESIDENT_NUMBER)]
CardNumber = Annotated[str, Path(pattern=CARD_NUMBER)]


@router.post("/registry/import", response_model=ImportOut)
def import_document(document: RegistryDocument, rt: RuntimeDep, actor: Writers) -> ImportOut:
    """Create or update municipalities, residents and cards from one document."""
    result = import_registry(rt, actor, document)
    return ImportOut(**result.__dict__)


@router.post("/residents", response_model=ResidentOut, status_code=201)
def create_resident(body: ResidentIn, rt: RuntimeDep, actor: Writers) -> ResidentOut:
    check_jurisdiction(actor, body.municipality)
    repo = rt.repo.acting(actor.name, actor.role)
    resident = repo.create_resident(resident_fields(body), [(card.number, card.issued_on) for card in body.cards])
    return resident_out(resident, rt.repo.cards_of(resident.id or 0))


@router.get("/residents/{number}", response_model=ResidentOut)
def get_resident(number: ResidentNumber, rt: RuntimeDep, actor: Readers) -> ResidentOut:
    resident = rt.repo.resident(number)
    return resident_out(resident, rt.repo.cards_of(resident.id or 0))


@router.patch("/residents/{number}", response_model=ResidentUpdateOut)
def patch_resident(number: ResidentNumber, body: ResidentPatch, rt: RuntimeDep, actor: Writers) -> ResidentUpdateOut:
    """Change registry fields. A change of name, address, date of birth or sex revokes the resident's
    signature certificates (affiliationChanged); user-authentication certificates stay valid."""
    check_jurisdiction(actor, rt.repo.resident(number).municipality_code)
    changes = body.model_dump(exclude_none=True)
    if "municipality" in changes:
        changes["municipality_code"] = changes.pop("municipality")
    resident, changed, revoked = update_resident(rt, actor, number, changes)
    return ResidentUpdateOut(
        resident=resident_out(resident, rt.repo.cards_of(resident.id or 0)),
        changed_basic_attributes=changed,
        revoked_serials=[r.serial_hex for r in revoked],
    )


@router.post("/residents/{number}/cards", response_model=CardOut, status_code=201)
def add_card(number: ResidentNumber, body: CardIn, rt: RuntimeDep, actor: Writers) -> CardOut:
    """Register a card; its expiry follows the age rule (10th birthday for adults, 5th for minors)."""
    check_jurisdiction(actor, rt.repo.resident(number).municipality_code)
    return card_out(rt.repo.acting(actor.name, actor.role).add_card(number, body.number, body.issued_on))


@router.post("/cards/{number}/lost", response_model=ResidentUpdateOut)
def card_lost(number: CardNumber, rt: RuntimeDep, actor: LossReporters) -> ResidentUpdateOut:
    """A lost card revokes both of its certificates (keyCompromise), if the policy allows: staff of the holder's
    municipality, or the holder's own app. To a holder app, another holder's card is an unknown card, and the
    answer carries no personal data."""
    card, resident, revoked = report_card_lost(rt, actor, number)
    return ResidentUpdateOut(
        resident=None if actor.role == Role.HOLDER_APP else resident_out(resident, rt.repo.cards_of(card.resident_id)),
        changed_basic_attributes=[],
        revoked_serials=[r.serial_hex for r in revoked],
    )
