"""Card issuance and renewal at a station: one proofing event, two certificates (signature and user
authentication) for keys the station generated, bound to the new card; on renewal the old card is superseded
and each of its live certificates revoked as superseded and linked as replaced.

Both certificates are prepared and linted before the event is spent. If the token fails after the first is
signed, that one is revoked (cessationOfOperation) and the event given back: never half a card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from ca.issuance import IssuedCertificate, IssueRequest, PreparedCertificate
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card
from service.db.repository import IssuanceMeta
from service.errors import ProofingEventUnusable
from service.flows.issuance import BoundStore, holder_of, usable_event
from service.flows.revocation import revoke
from service.runtime import Runtime

CARD_OPERATIONS = {"card_issue", "card_renew"}
PROFILES = ("signature", "user-authentication")


@dataclass(frozen=True)
class CardIssueInput:
    resident_number: str
    proofing_event_id: str
    card_number: str
    csrs: dict[str, bytes]  # profile -> CSR (PEM or DER)
    replaces_card: str | None = None
    key_origin: str = "station"


@dataclass(frozen=True)
class CardIssueResult:
    card: Card
    issued: dict[str, IssuedCertificate]
    revoked: list[CertificateRecord]


def issue_card(rt: Runtime, actor: Actor, item: CardIssueInput) -> CardIssueResult:
    resident = rt.repo.resident(item.resident_number)
    renewal = item.replaces_card is not None
    event = usable_event(rt, item.proofing_event_id, resident, renewal=renewal, operations=CARD_OPERATIONS)
    card = rt.repo.card(item.card_number)
    if card.resident_id != resident.id or card.status != "active":
        raise ProofingEventUnusable(f"card {card.number} is not an active card of this resident")
    if set(item.csrs) != set(PROFILES):
        raise ProofingEventUnusable(f"a card needs exactly one CSR for each of {', '.join(PROFILES)}")
    old_card = rt.repo.card(item.replaces_card) if item.replaces_card else None
    if old_card is not None and (old_card.resident_id != resident.id or old_card.id == card.id):
        raise ProofingEventUnusable(f"card {old_card.number} is not another card of this resident")
    predecessors = {
        record.profile: record
        for record in rt.repo.live_certificates(resident.id or 0)
        if old_card is not None and record.card_id == old_card.id
    }
    card_expires = datetime.combine(card.expires_on, datetime.min.time(), UTC)
    holder = holder_of(rt, resident, card_expires)
    authority = rt.authority()
    prepared: dict[str, PreparedCertificate] = {}
    for profile in PROFILES:  # every check and both lints before the event is spent
        predecessor = predecessors.get(profile)
        request = IssueRequest(
            profile=profile,
            csr=load_csr(item.csrs[profile]),
            holder=holder,
            assurance=AssuranceLevel(event.assurance_level),
            predecessor_not_after=predecessor.not_after.replace(tzinfo=UTC) if predecessor else None,
        )
        prepared[profile] = authority.prepare(request)
    repo = rt.repo.acting(actor.name, actor.role, event.rule_id, "allow")
    if not repo.consume_proofing(event.id, datetime.now(UTC)):
        raise ProofingEventUnusable(f"proofing event {event.id} was used or expired meanwhile")
    issued: dict[str, IssuedCertificate] = {}
    try:
        for profile in PROFILES:
            predecessor = predecessors.get(profile)
            meta = IssuanceMeta(
                resident_id=resident.id,
                card_id=card.id,
                proofing_event_id=event.id,
                replaces_serial=predecessor.serial_hex if predecessor else None,
                key_origin=item.key_origin,
            )
            issued[profile] = authority.issue_prepared(prepared[profile], BoundStore(repo, meta))
    except Exception:
        for done in issued.values():
            revoke(rt, actor, done.intent.serial, "cessationOfOperation")
        repo.release_proofing(event.id)
        raise
    if "deliver_by_restricted_mail" in json.loads(event.conditions):
        repo.set_card_delivery(card.number, "restricted_mail")
    revoked: list[CertificateRecord] = []
    if old_card is not None:
        for record in predecessors.values():
            revoked.append(revoke(rt, actor, int(record.serial_hex, 16), "superseded", publish=False))
        repo.set_card_status(old_card.number, "superseded")
    return CardIssueResult(card=rt.repo.card(card.number), issued=issued, revoked=revoked)
