"""Revocation and its registry triggers.

A revocation made on its own (the API, an operator) publishes a fresh CRL at once. Revocations made in bulk
as part of another operation (a card renewal superseding the old card's certificates) leave publication to
the distribution point: ``Runtime.current_crl`` never serves a stored CRL that misses a revocation, and
regenerates it on the next fetch. Regenerating the whole CRL on every revocation of a renewal wave would make
the wave quadratic in the number of revoked entries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, Resident
from service.errors import RevocationRefused
from service.registry_rules import changed_basic_attributes
from service.runtime import Runtime


def revoke(rt: Runtime, actor: Actor | None, serial: int, reason: str, *, publish: bool = True) -> CertificateRecord:
    """Revoke one certificate; with ``publish`` (the default) its issuer's CRL is regenerated at once."""
    repo = rt.repo if actor is None else rt.repo.acting(actor.name, actor.role)
    record = repo.revoke(serial, reason, datetime.now(UTC).replace(microsecond=0))
    if publish:
        rt.crl(record.issuer)
    return record


def _revoke_all(rt: Runtime, actor: Actor, records: list[CertificateRecord], reason: str) -> list[CertificateRecord]:
    repo = rt.repo.acting(actor.name, actor.role)
    at = datetime.now(UTC).replace(microsecond=0)
    done: list[CertificateRecord] = []
    for record in records:
        try:
            done.append(repo.revoke(int(record.serial_hex, 16), reason, at))
        except RevocationRefused:
            continue  # revoked meanwhile: nothing left to do
    for issuer in sorted({r.issuer for r in done}):
        rt.crl(issuer)
    return done


def update_resident(
    rt: Runtime, actor: Actor, number: str, changes: dict[str, Any]
) -> tuple[Resident, list[str], list[CertificateRecord]]:
    """Change registry fields. A change of a basic attribute revokes the signature certificates only."""
    resident, before = rt.repo.acting(actor.name, actor.role).update_resident(number, changes)
    changed = changed_basic_attributes(before, changes)
    revoked: list[CertificateRecord] = []
    if changed:
        live = rt.repo.live_certificates(resident.id or 0, "signature")
        revoked = _revoke_all(rt, actor, live, "affiliationChanged")
    return resident, changed, revoked


def report_card_lost(rt: Runtime, actor: Actor, card_number: str) -> tuple[Card, list[CertificateRecord]]:
    """A lost card: its status becomes lost and every live certificate on it (both types) is revoked."""
    card = rt.repo.acting(actor.name, actor.role).set_card_status(card_number, "lost")
    live = [
        r
        for r in rt.repo.live_certificates(card.resident_id)
        if r.card_id == card.id or (r.card_id is None and r.device_id is None)
    ]
    return card, _revoke_all(rt, actor, live, "keyCompromise")
