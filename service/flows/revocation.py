"""Revocation and its registry triggers, each decided by the policy (service/flows/authorisation.py) and
recorded with the deciding rule. Each revocation is one audited transaction; its issuer is then handed to CRL
publication (service/publication/crl.py: coalesced, signed outside the request). OCSP answers from the
certificate rows, so a revocation is answered ``revoked`` there as soon as it commits.

A service certificate (CMP responder, TLS server) is re-keyed when revoked (service/rekey.py): a new key on
the token and a new certificate, never a reissue for the key that may be compromised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.db.issuance_context import ContextQuery
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, Card, Resident
from service.db.repository import serial_hex
from service.db.unit import Acting
from service.errors import CertificateNotFound
from service.flows.authorisation import RevocationAsk, decide_revocation, hide_foreign, unknown_card
from service.flows.registry_rules import BASIC_ATTRIBUTES, changed_basic_attributes
from service.policy.model import Channel
from service.rekey import rekey_service
from service.runtime import Runtime


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def revoke(rt: Runtime, actor: Actor, serial: int, ask: RevocationAsk) -> CertificateRecord:
    """Revoke one issued certificate if the policy allows this actor to; RevocationRefused when it is revoked
    already or was never issued. A holder app's foreign certificate is CertificateNotFound, as an unknown one."""
    ctx = rt.repo.issuance_context(ContextQuery(presented_serial=serial, policy_facts=True))
    record, unknown = ctx.presented, CertificateNotFound(f"no certificate with serial {serial_hex(serial)}")
    if record is None:
        raise unknown
    hide_foreign(actor, ctx.resident.id if ctx.resident else None, unknown)
    who = decide_revocation(rt, actor, ctx, record, ask, f"certificate:{record.serial_hex}")
    revoked = revoke_decided(rt, who, serial, ask.reason)
    if revoked.profile in rt.profiles.servers:
        rekey_service(rt, revoked)
    return revoked


def revoke_decided(rt: Runtime, who: Acting, serial: int, reason: str) -> CertificateRecord:
    """Revoke one certificate on a decision taken elsewhere: a CMP ``rr`` the policy allowed on the request's
    own protection (service/protocols/cmp/renewal.py), a certificate its requester refused in ``certConf``."""
    revoked = rt.repo.as_(who).revoke(serial, reason, _now())
    rt.crl_publisher().revoked({revoked.issuer})
    return revoked


def _revoke_all(rt: Runtime, who: Acting, records: list[CertificateRecord], reason: str) -> list[CertificateRecord]:
    done = rt.repo.as_(who).revoke_many([int(r.serial_hex, 16) for r in records], reason, _now())
    if done:
        rt.crl_publisher().revoked({r.issuer for r in done})
    return done


def update_resident(
    rt: Runtime, actor: Actor, number: str, changes: dict[str, Any]
) -> tuple[Resident, list[str], list[CertificateRecord]]:
    """Change registry fields. A change of a basic attribute revokes the signature certificates only
    (affiliationChanged, decided before anything is written: a refusal changes nothing)."""
    who = None
    if {*BASIC_ATTRIBUTES, "municipality_code"} & set(changes):
        ctx = rt.repo.issuance_context(ContextQuery(resident_number=number, policy_facts=True))
        ask = RevocationAsk("affiliationChanged", Channel.BACK_OFFICE)
        who = decide_revocation(rt, actor, ctx, None, ask, f"resident:{number}")
    resident, before = rt.repo.acting(actor.name, actor.role).update_resident(number, changes)
    changed = changed_basic_attributes(before, changes)
    revoked: list[CertificateRecord] = []
    if changed and who is not None:
        live = rt.repo.live_certificates(resident.id or 0, "signature")
        revoked = _revoke_all(rt, who, live, "affiliationChanged")
    return resident, changed, revoked


def report_card_lost(rt: Runtime, actor: Actor, card_number: str) -> tuple[Card, Resident, list[CertificateRecord]]:
    """A lost card: if the policy allows this actor (keyCompromise on this holder's card), its status becomes
    lost and every live certificate on it (both types) is revoked. A holder app's foreign card is
    indistinguishable from an unknown one."""
    ctx = rt.repo.issuance_context(ContextQuery(card_number=card_number, policy_facts=True))
    card, resident = ctx.new_card(), ctx.holder()
    hide_foreign(actor, resident.id, unknown_card(card_number))
    who = decide_revocation(rt, actor, ctx, None, RevocationAsk("keyCompromise"), f"card:{card_number}")
    card = rt.repo.as_(who).set_card_status(card_number, "lost")
    live = [
        r
        for r in rt.repo.live_certificates(card.resident_id)
        if r.card_id == card.id or (r.card_id is None and r.device_id is None)
    ]
    return card, resident, _revoke_all(rt, who, live, "keyCompromise")
