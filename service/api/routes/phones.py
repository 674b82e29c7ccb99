"""Smartphone enrollment: a nonce, then an application signed with the card's signature key."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.convert import certificate_out
from service.api.deps import RuntimeDep, require
from service.api.schemas import (
    CertificateOut,
    NonceOut,
    PhoneEnrollIn,
    PhoneEnrollOut,
    PhoneRenewIn,
    PinResetIn,
    PinResetOut,
)
from service.db.registry_models import Actor
from service.errors import ProofingEventUnusable
from service.flows.phone import PhoneEnrollInput, enroll_phone, new_nonce
from service.flows.phone_rekey import PhoneRenewInput, renew_phone_certificate
from service.flows.pins import authorise_pin_reset
from service.policy.model import Role

router = APIRouter(prefix="/v1", tags=["phones and kiosks"])
HolderApps = Annotated[Actor, Depends(require(Role.HOLDER_APP))]
Resetters = Annotated[Actor, Depends(require(Role.KIOSK, Role.MUNICIPAL_STAFF, Role.FISCAL_YEAR_STAFF))]


@router.post("/phone-enrollments/nonce", response_model=NonceOut, status_code=201)
def create_nonce(rt: RuntimeDep, actor: HolderApps) -> NonceOut:
    """A single-use nonce (5 minutes) for the application the card's signature key signs."""
    nonce = new_nonce(rt, actor)
    return NonceOut(nonce=nonce.nonce, expires_at=nonce.expires_at)


@router.post("/phone-enrollments", response_model=PhoneEnrollOut, status_code=201)
def create_enrollment(body: PhoneEnrollIn, rt: RuntimeDep, actor: HolderApps) -> PhoneEnrollOut:
    """Issue the phone's signature and user-authentication certificates for keys made in its secure element,
    on the strength of the card's signature certificate (policy P11); they are bound to that card."""
    signature = _b64(body.application_signature_b64)
    event, issued = enroll_phone(
        rt,
        actor,
        PhoneEnrollInput(
            card_certificate_pem=body.card_certificate_pem.encode(),
            device_id=body.device_id,
            csrs={
                "signature": body.signature_csr_pem.encode(),
                "user-authentication": body.user_authentication_csr_pem.encode(),
            },
            nonce=body.nonce,
            application_signature=signature,
            attestations={
                "signature": _pem(body.signature_attestation_pem),
                "user-authentication": _pem(body.user_authentication_attestation_pem),
            },
        ),
    )
    return PhoneEnrollOut(
        proofing_event_id=event.id,
        decision_rule_id=event.rule_id,
        assurance_level=event.assurance_level,
        signature=certificate_out(issued["signature"].record),
        user_authentication=certificate_out(issued["user-authentication"].record),
    )


@router.post("/phone-renewals", response_model=CertificateOut, status_code=201)
def create_phone_renewal(body: PhoneRenewIn, rt: RuntimeDep, actor: HolderApps) -> CertificateOut:
    """Re-key a phone certificate (policy P11-REKEY): a new key made on the phone, the request signed with the
    current phone key; only the newest certificate of a lineage; the old one is revoked as superseded."""
    issued = renew_phone_certificate(
        rt,
        actor,
        PhoneRenewInput(
            current_certificate_pem=body.current_certificate_pem.encode(),
            csr=body.csr_pem.encode(),
            nonce=body.nonce,
            signature=_b64(body.signature_b64),
            attestation=_pem(body.attestation_pem),
        ),
    )
    return certificate_out(issued.record)


def _pem(text: str | None) -> bytes | None:
    return text.encode() if text else None


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProofingEventUnusable("the signature is not base64") from None


@router.post("/pin-resets", response_model=PinResetOut, status_code=201)
def create_pin_reset(body: PinResetIn, rt: RuntimeDep, actor: Resetters) -> PinResetOut:
    """Spend a PIN-reset proofing event the policy allowed (kiosk: face match plus the other credential's
    PIN, rules P8/P9; the counter otherwise) and authorise one reset of that credential."""
    event = authorise_pin_reset(rt, actor, body.proofing_event_id, body.credential)
    return PinResetOut(proofing_event_id=event.id, credential=body.credential, rule_id=event.rule_id, authorised=True)
