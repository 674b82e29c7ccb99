"""Smartphone (derived) certificates: keys made in the phone's secure element, the application signed with
the card's signature key (domain brief §2.6; NIST SP 800-157 derived credentials).

The phone sends CSRs (its keys never leave it) and an application: the SHA-256 of both CSRs, its device id
and a single-use server nonce, signed with the card's signature key after the holder entered the card's
signature password. The service checks that the card certificate is one it issued, is a live signature
certificate of an active card, that the application signature verifies with it, and that the nonce is fresh;
then the policy decides (P11) and both phone certificates are issued bound to that card, so card events
(lost card, attribute change) revoke them too.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.issuance_context import ContextQuery, IssuanceContext
from service.db.issuance_store import Binding, Spend
from service.db.registry_models import Actor, Card, EnrollmentNonce, ProofingEvent, Resident
from service.db.unit import Acting
from service.errors import PolicyDenied, ProofingEventUnusable
from service.flows.attestation import device_key_evidence
from service.flows.authorisation import check_card_usable, evaluate, hide_foreign
from service.flows.issuance import card_end, holder_of
from service.flows.pipeline import IssuedCertificate, Order, Plan
from service.flows.proofing import ProofingInput, policy_request
from service.policy.model import Channel, Decision, Evidence, Operation
from service.protocols.phone import PHONE_PROFILES as PROFILES
from service.protocols.phone import application_bytes
from service.runtime import Runtime

NONCE_TTL = timedelta(minutes=5)


def new_nonce(rt: Runtime, actor: Actor) -> EnrollmentNonce:
    now = datetime.now(UTC).replace(microsecond=0)
    nonce = EnrollmentNonce(
        nonce=secrets.token_hex(32), actor_id=actor.id or 0, created_at=now, expires_at=now + NONCE_TTL
    )
    rt.repo.acting(actor.name, actor.role).add_nonce(nonce)
    return nonce


@dataclass(frozen=True)
class PhoneEnrollInput:
    card_certificate_pem: bytes
    device_id: str
    csrs: dict[str, bytes]
    nonce: str
    application_signature: bytes
    attestations: dict[str, bytes | None] = field(default_factory=dict)  # profile -> PEM chain from the phone


def verify_application(
    card_cert: x509.Certificate, data: bytes, signature: bytes, whose: str = "the card's signature key"
) -> None:
    public = card_cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise ProofingEventUnusable("the card certificate's key type cannot sign an application")
    except InvalidSignature:
        raise ProofingEventUnusable(f"the application is not signed by {whose}") from None


def decide_online(
    rt: Runtime,
    actor: Actor,
    ctx: IssuanceContext,
    evidence: frozenset[Evidence],
    operation: Operation = Operation.PHONE_CERT_ISSUE,
    revocation_reason: str | None = None,
    note: str | None = None,
) -> tuple[Acting, Decision, AssuranceLevel]:
    """The policy on an online request (by default phone_cert_issue; CMP also asks cert_renew and revoke) over
    online_sign_cert; a refusal is audited and raised. The request is signed by the holder's own key, so the
    actor acts for this holder (holder_bound). Returns who acts under the decision, the decision and its level."""
    resident = ctx.resident
    if resident is None:
        raise ProofingEventUnusable("the certificate is not bound to a resident of this registry")
    proofing = ProofingInput(resident.resident_number, operation, Channel.ONLINE_SIGN_CERT, evidence)
    request = replace(policy_request(actor, ctx, proofing), revocation_reason=revocation_reason, holder_bound=True)
    decision = evaluate(rt, request)
    who = Acting(actor.name, actor.role, decision.rule_id, "allow" if decision.allowed else "deny")
    if not decision.allowed or decision.assurance is None or decision.policy_oid is None:
        details = {"evidence_refused": note} if note else {}
        rt.repo.as_(who).record_denial(f"resident:{resident.resident_number}", operation=operation.value,
                                       reason=decision.reason, **details)  # fmt: skip
        raise PolicyDenied(decision.rule_id, decision.reason, decision.regime)
    return who, decision, AssuranceLevel(decision.assurance.value)


def online_proofing(
    actor: Actor, resident: Resident, decision: Decision, evidence: frozenset[Evidence], operation: Operation
) -> ProofingEvent:
    """The online proofing a decision rests on, recorded already used in the request's intent transaction."""
    now = datetime.now(UTC).replace(microsecond=0)
    return ProofingEvent(
        id=str(uuid.uuid4()),
        actor_id=actor.id or 0,
        resident_id=resident.id or 0,
        operation=operation.value,
        channel=Channel.ONLINE_SIGN_CERT.value,
        evidence=json.dumps(sorted(e.value for e in evidence)),
        regime=decision.regime,
        rule_id=decision.rule_id,
        assurance_level=str(decision.assurance),
        policy_oid=str(decision.policy_oid),
        conditions=json.dumps(list(decision.conditions)),
        created_at=now,
        expires_at=now,
        used_at=now,
    )


def live_card_certificate(ctx: IssuanceContext, presented: x509.Certificate, rt: Runtime) -> Card:
    """The presented certificate is a live signature certificate of an active card issued here; its card."""
    record = ctx.presented
    now = datetime.now(UTC)
    if record is None or record.profile != "signature" or record.card_id is None:
        raise ProofingEventUnusable("the card certificate is not a signature certificate of a card issued here")
    if record.status != "issued":
        raise ProofingEventUnusable(f"the card's signature certificate is {record.status}")
    if not presented.not_valid_before_utc <= now <= presented.not_valid_after_utc:
        raise ProofingEventUnusable("the card's signature certificate is not within its validity")
    issuer = rt.authority().issuers[record.issuer].certificate
    try:
        presented.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise ProofingEventUnusable("the card certificate does not chain to this CA") from None
    card = ctx.card_by_id(record.card_id)
    if card is None:
        raise ProofingEventUnusable("the card certificate is bound to no card of its holder")
    check_card_usable(card)
    return card


def enroll_phone(
    rt: Runtime, actor: Actor, item: PhoneEnrollInput
) -> tuple[ProofingEvent, dict[str, IssuedCertificate]]:
    card_cert = x509.load_pem_x509_certificate(item.card_certificate_pem)
    ctx = rt.repo.issuance_context(ContextQuery(presented_der=card_cert.public_bytes(Encoding.DER), policy_facts=True))
    card = live_card_certificate(ctx, card_cert, rt)
    hide_foreign(actor, card.resident_id, ProofingEventUnusable("the card certificate is not a signature certificate "
                                                                "of a card issued here"), proven=True)  # fmt: skip
    verify_application(card_cert, application_bytes(item.nonce, item.device_id, item.csrs), item.application_signature)
    csrs = {p: load_csr(item.csrs[p]) for p in PROFILES}
    device = device_key_evidence(rt, [(p, csrs[p].public_key(), item.attestations.get(p)) for p in PROFILES],
                                 bytes.fromhex(item.nonce))  # fmt: skip
    evidence = frozenset({Evidence.CARD_SIGN_CERTIFICATE, *device.evidence})
    who, decision, assurance = decide_online(rt, actor, ctx, evidence, note=device.refused)
    resident = ctx.holder()
    holder = holder_of(ctx, card_end(card))  # bound to the card
    binding = Binding(resident_id=resident.id, card_id=card.id, device_id=item.device_id, key_origin="device")
    orders = tuple(Order.holder(IssueRequest(p, csrs[p], holder, assurance), binding) for p in PROFILES)
    event = online_proofing(actor, resident, decision, evidence, Operation.PHONE_CERT_ISSUE)
    issued = rt.pipeline().issue(Plan(who, Spend(nonce=item.nonce, new_event=event), orders, channel="phone"))
    return event, dict(zip(PROFILES, issued.certificates, strict=True))
