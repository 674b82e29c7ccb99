"""Proofing events and certificates: record a verification, issue on it, read, revoke."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from service.api.convert import certificate_out, decision_out, proofing_out
from service.api.deps import ALL_ROLES, STAFF, RuntimeDep, require
from service.api.schemas import EVENT_ID, CertificateIn, CertificateOut, DecisionOut, ProofingIn, ProofingOut, RevokeIn
from service.db.registry_models import Actor
from service.flows.authorisation import RevocationAsk
from service.flows.enrollment import enrollment_secret
from service.flows.issuance import IssueInput, issue_certificate
from service.flows.proofing import ProofingInput, record_proofing
from service.flows.revocation import revoke
from service.flows.serials import SERIAL_PATTERN, parse_serial
from service.policy.model import Role

router = APIRouter(prefix="/v1")
Proofers = Annotated[Actor, Depends(require(ALL_ROLES - {Role.AUDITOR, Role.CA_OPERATOR}))]
Issuers = Annotated[Actor, Depends(require(STAFF, Role.POST_OFFICE_STAFF, Role.HOLDER_APP))]
Readers = Annotated[Actor, Depends(require(STAFF, Role.POST_OFFICE_STAFF, Role.CA_OPERATOR, Role.AUDITOR))]
Revokers = Annotated[Actor, Depends(require(STAFF, Role.POST_OFFICE_STAFF, Role.CA_OPERATOR))]
# The pattern is parse_serial's own (service/flows/serials.py), which answers 400 invalid-serial with its reason.
Serial = Annotated[
    str, Path(description="hex, optionally 0x-prefixed or with colons", json_schema_extra={"pattern": SERIAL_PATTERN})
]
EventId = Annotated[str, Path(pattern=EVENT_ID)]


@router.post("/proofing-events", response_model=ProofingOut, status_code=201, tags=["issuance"])
def create_proofing_event(body: ProofingIn, rt: RuntimeDep, actor: Proofers) -> ProofingOut:
    """Record an identity verification. The policy decides whether this actor may do it and what level it
    grants; a refusal is a 403 problem naming the rule. Events are single-use and expire.

    The response (and only this one) carries ``enrollment_secret``: the one-time secret a protocol client
    presents with the event id (EST Basic auth, CMP ``ir`` MAC). It is derived on the token, never stored."""
    item = ProofingInput(body.resident_number, body.operation, body.channel, frozenset(body.evidence), body.venue)
    event, decision = record_proofing(rt, actor, item)
    out = proofing_out(event, body.resident_number, decision_out(decision))
    return out.model_copy(update={"enrollment_secret": enrollment_secret(rt, event.id)})


@router.get("/proofing-events/{event_id}", response_model=ProofingOut, tags=["issuance"])
def get_proofing_event(event_id: EventId, rt: RuntimeDep, actor: Readers) -> ProofingOut:
    event = rt.repo.proofing_event(event_id)
    resident = rt.repo.resident_by_id(event.resident_id)
    decision = DecisionOut(
        allowed=True,
        rule_id=event.rule_id,
        reason="recorded",
        assurance_level=event.assurance_level,
        policy_oid=event.policy_oid,
        conditions=json.loads(event.conditions),
        basis="",
        regime=event.regime,
    )
    return proofing_out(event, resident.resident_number, decision)


@router.post("/certificates", response_model=CertificateOut, status_code=201, tags=["issuance"])
def create_certificate(body: CertificateIn, rt: RuntimeDep, actor: Issuers) -> CertificateOut:
    """Issue a certificate for a CSR on a proofing event. The subject and extensions come from the profile
    and the registry, never from the CSR; the policy OID of the event's assurance level is stamped."""
    issued = issue_certificate(
        rt,
        actor,
        IssueInput(
            csr=body.csr_pem.encode(),
            resident_number=body.resident_number,
            certificate_type=body.certificate_type,
            proofing_event_id=body.proofing_event_id,
            card_number=body.card_number,
            device_id=body.device_id,
            replaces_serial=parse_serial(body.replaces_serial) if body.replaces_serial else None,
            key_origin=body.key_origin,
        ),
    )
    return certificate_out(issued.record)


@router.get("/certificates/{serial}", response_model=CertificateOut, tags=["issuance"])
def get_certificate(serial: Serial, rt: RuntimeDep, actor: Readers) -> CertificateOut:
    return certificate_out(rt.repo.certificate(parse_serial(serial)))


@router.post("/certificates/{serial}/revoke", response_model=CertificateOut, tags=["revocation"])
def revoke_certificate(serial: Serial, body: RevokeIn, rt: RuntimeDep, actor: Revokers) -> CertificateOut:
    """Revoke, if the policy allows this actor on this certificate (its ``revoke`` rules: who, channel, reason,
    jurisdiction, evidence; a refusal is 403 policy-denied naming the rule). OCSP answers revoked from the
    commit on; the CRL follows within the publication bound. A service certificate is re-keyed."""
    ask = RevocationAsk(body.reason, body.channel, frozenset(body.evidence))
    return certificate_out(revoke(rt, actor, parse_serial(serial), ask))
