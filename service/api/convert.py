"""Rows and decisions to response bodies."""

from __future__ import annotations

import json

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.api.schemas import AuditOut, CardOut, CertificateOut, DecisionOut, ProofingOut, ResidentOut
from service.db.audit_models import AuditRecord
from service.db.models import CertificateRecord
from service.db.registry_models import Card, ProofingEvent, Resident
from service.policy.model import Decision


def card_out(card: Card) -> CardOut:
    return CardOut(
        number=card.number,
        issued_on=card.issued_on,
        expires_on=card.expires_on,
        status=card.status,
        delivery=card.delivery,
    )


def resident_out(resident: Resident, cards: list[Card]) -> ResidentOut:
    return ResidentOut(
        resident_number=resident.resident_number,
        name=resident.name,
        address=resident.address,
        municipality=resident.municipality_code,
        date_of_birth=resident.date_of_birth,
        sex=resident.sex,
        adult_ward=resident.adult_ward,
        evacuee=resident.evacuee,
        stay_limit=resident.stay_limit,
        cards=[card_out(c) for c in cards],
    )


def decision_out(decision: Decision) -> DecisionOut:
    return DecisionOut(
        allowed=decision.allowed,
        rule_id=decision.rule_id,
        reason=decision.reason,
        assurance_level=decision.assurance.value if decision.assurance else None,
        policy_oid=decision.policy_oid,
        conditions=list(decision.conditions),
        basis=decision.basis,
        regime=decision.regime,
    )


def proofing_out(event: ProofingEvent, resident_number: str, decision: DecisionOut) -> ProofingOut:
    return ProofingOut(
        id=event.id,
        resident_number=resident_number,
        operation=event.operation,
        channel=event.channel,
        evidence=json.loads(event.evidence),
        decision=decision,
        created_at=event.created_at,
        expires_at=event.expires_at,
        used=event.used_at is not None,
    )


def certificate_out(record: CertificateRecord) -> CertificateOut:
    pem = None
    if record.certificate_der is not None:
        pem = x509.load_der_x509_certificate(record.certificate_der).public_bytes(Encoding.PEM).decode()
    return CertificateOut(
        serial=record.serial_hex,
        certificate_type=record.profile,
        issuer=record.issuer,
        status=record.status,
        subject=record.subject,
        not_before=record.not_before,
        not_after=record.not_after,
        assurance_level=record.assurance_level,
        key_origin=record.key_origin,
        proofing_event_id=record.proofing_event_id,
        replaces_serial=record.replaces_serial,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
        certificate_pem=pem,
    )


def audit_out(record: AuditRecord) -> AuditOut:
    return AuditOut(
        seq=record.seq or 0,
        at=record.at,
        actor=record.actor,
        role=record.role,
        action=record.action,
        object=record.object,
        rule_id=record.rule_id,
        decision=record.decision,
        details=json.loads(record.details),
        hash=record.hash,
        leaf_index=record.leaf_index,
        integrated_at=record.integrated_at,
    )
