"""Revocation and its registry triggers. Each revocation is one audited transaction; its issuer is then handed
to CRL publication (service/publication/crl.py: coalesced, signed outside the request). OCSP answers from the
certificate rows, so a revocation is answered ``revoked`` there as soon as it commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, Resident
from service.db.unit import Acting
from service.registry_rules import changed_basic_attributes
from service.runtime import Runtime


def _acting(actor: Actor | Acting | None) -> Acting:
    if actor is None:
        return Acting()
    return actor if isinstance(actor, Acting) else Acting(actor.name, actor.role)


def revoke(rt: Runtime, actor: Actor | Acting | None, serial: int, reason: str) -> CertificateRecord:
    """Revoke one issued certificate; RevocationRefused when it is revoked already or was never issued."""
    record = rt.repo.as_(_acting(actor)).revoke(serial, reason, datetime.now(UTC).replace(microsecond=0))
    rt.crl_publisher().revoked({record.issuer})
    return record


def _revoke_all(rt: Runtime, actor: Actor, records: list[CertificateRecord], reason: str) -> list[CertificateRecord]:
    at = datetime.now(UTC).replace(microsecond=0)
    done = rt.repo.as_(_acting(actor)).revoke_many([int(r.serial_hex, 16) for r in records], reason, at)
    if done:
        rt.crl_publisher().revoked({r.issuer for r in done})
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
