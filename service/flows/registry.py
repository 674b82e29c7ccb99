"""Registry import: municipalities, residents and their cards from one JSON document, created or updated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.db.registry_models import Actor
from service.errors import CardNotFound, OutsideJurisdiction, ResidentNotFound
from service.flows.registry_document import RegistryDocument, ResidentIn
from service.flows.revocation import update_resident
from service.runtime import Runtime


@dataclass
class ImportResult:
    municipalities: int = 0
    residents_created: int = 0
    residents_updated: int = 0
    cards_created: int = 0
    revoked_serials: list[str] = field(default_factory=list)


def resident_fields(item: ResidentIn) -> dict[str, Any]:
    return {
        "resident_number": item.resident_number,
        "name": item.name,
        "address": item.address,
        "municipality_code": item.municipality,
        "date_of_birth": item.date_of_birth,
        "sex": item.sex,
        "adult_ward": item.adult_ward,
        "evacuee": item.evacuee,
        "stay_limit": item.stay_limit,
    }


MUNICIPAL_ROLES = frozenset({"municipal_staff", "fiscal_year_staff"})


def check_jurisdiction(actor: Actor, municipality_code: str) -> None:
    """Municipal staff keep the register of their own municipality only; CA operators act for every one."""
    if actor.role in MUNICIPAL_ROLES and actor.municipality_code != municipality_code:
        raise OutsideJurisdiction(
            f"{actor.role} of {actor.municipality_code or 'no municipality'} may not change the register of "
            f"{municipality_code}"
        )


def import_registry(rt: Runtime, actor: Actor, document: RegistryDocument) -> ImportResult:
    """Upsert everything in the document. An attribute change on an existing resident revokes as the API does.
    Everything is checked against the actor's jurisdiction before anything is written."""
    for municipality in document.municipalities:
        check_jurisdiction(actor, municipality.code)
    for item in document.residents:
        check_jurisdiction(actor, item.municipality)
    repo = rt.repo.acting(actor.name, actor.role)
    result = ImportResult()
    for municipality in document.municipalities:
        repo.upsert_municipality(
            municipality.code, municipality.name, municipality.prefecture, municipality.post_office_delegation
        )
        result.municipalities += 1
    for item in document.residents:
        fields = resident_fields(item)
        try:
            rt.repo.resident(item.resident_number)
        except ResidentNotFound:
            repo.create_resident(fields)
            result.residents_created += 1
        else:
            check_jurisdiction(actor, rt.repo.resident(item.resident_number).municipality_code)
            changes = {k: v for k, v in fields.items() if k != "resident_number"}
            _, _, revoked = update_resident(rt, actor, item.resident_number, changes)
            result.residents_updated += 1
            result.revoked_serials += [r.serial_hex for r in revoked]
        for card in item.cards:
            try:
                rt.repo.card(card.number)
            except CardNotFound:
                repo.add_card(item.resident_number, card.number, card.issued_on)
                result.cards_created += 1
    return result
