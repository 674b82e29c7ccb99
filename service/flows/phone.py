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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ca.issuance import IssuedCertificate, IssueRequest, PreparedCertificate
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.registry_models import Actor, EnrollmentNonce, ProofingEvent, Resident
from service.db.registry_repo import RegistryRepository
from service.db.repository import IssuanceMeta
from service.errors import PolicyDenied, ProofingEventUnusable
from service.flows.issuance import BoundStore, holder_of
from service.flows.proofing import ProofingInput, evaluate, policy_request
from service.policy.model import Channel, Decision, Evidence, Operation
from service.protocol import PHONE_PROFILES as PROFILES
from service.protocol import application_bytes
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
    resident: Resident,
    evidence: frozenset[Evidence],
    operation: Operation = Operation.PHONE_CERT_ISSUE,
) -> tuple[RegistryRepository, Decision, AssuranceLevel]:
    """The policy on an online request (by default phone_cert_issue; CMP also asks cert_renew and revoke) over
    online_sign_cert; a refusal is audited and raised. Returns the repository acting under the decision, the
    decision and its level."""
    proofing = ProofingInput(resident.resident_number, operation, Channel.ONLINE_SIGN_CERT, evidence)
    decision = evaluate(rt, policy_request(rt, actor, resident, proofing))
    repo = rt.repo.acting(actor.name, actor.role, decision.rule_id, "allow" if decision.allowed else "deny")
    if not decision.allowed or decision.assurance is None or decision.policy_oid is None:
        repo.record_denial(f"resident:{resident.resident_number}", operation=operation.value, reason=decision.reason)
        raise PolicyDenied(decision.rule_id, decision.reason, decision.regime)
    return repo, decision, AssuranceLevel(decision.assurance.value)


def spend_nonce_and_record(
    repo: RegistryRepository,
    actor: Actor,
    resident: Resident,
    decision: Decision,
    evidence: frozenset[Evidence],
    nonce: str,
) -> ProofingEvent:
    """Spend the nonce (single use) and record the online proofing the decision rests on, already used."""
    now = datetime.now(UTC).replace(microsecond=0)
    if not repo.consume_nonce(nonce, now):
        raise ProofingEventUnusable("the nonce is unknown, used or expired; ask for a new one")
    return repo.record_proofing(
        ProofingEvent(
            id=str(uuid.uuid4()),
            actor_id=actor.id or 0,
            resident_id=resident.id or 0,
            operation=Operation.PHONE_CERT_ISSUE.value,
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
    )


def enroll_phone(
    rt: Runtime, actor: Actor, item: PhoneEnrollInput
) -> tuple[ProofingEvent, dict[str, IssuedCertificate]]:
    card_cert = x509.load_pem_x509_certificate(item.card_certificate_pem)
    record = rt.repo.certificate_by_der(card_cert.public_bytes(Encoding.DER))
    now = datetime.now(UTC)
    if record is None or record.profile != "signature" or record.card_id is None:
        raise ProofingEventUnusable("the card certificate is not a signature certificate of a card issued here")
    if record.status != "issued":
        raise ProofingEventUnusable(f"the card's signature certificate is {record.status}")
    if not card_cert.not_valid_before_utc <= now <= card_cert.not_valid_after_utc:
        raise ProofingEventUnusable("the card's signature certificate is not within its validity")
    issuer = rt.authority().issuers[record.issuer].certificate
    try:
        card_cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise ProofingEventUnusable("the card certificate does not chain to this CA") from None
    card = rt.repo.card_by_id(record.card_id)
    if card.status != "active":
        raise ProofingEventUnusable(f"card {card.number} is {card.status}")
    verify_application(card_cert, application_bytes(item.nonce, item.device_id, item.csrs), item.application_signature)
    resident = rt.repo.resident_by_id(card.resident_id)
    evidence = frozenset({Evidence.CARD_SIGN_CERTIFICATE, Evidence.DEVICE_GENERATED_KEY})
    repo, decision, assurance = decide_online(rt, actor, resident, evidence)
    holder = holder_of(rt, resident, datetime.combine(card.expires_on, datetime.min.time(), UTC))  # bound to the card
    authority = rt.authority()
    prepared: dict[str, PreparedCertificate] = {
        profile: authority.prepare(IssueRequest(profile, load_csr(item.csrs[profile]), holder, assurance))
        for profile in PROFILES
    }
    event = spend_nonce_and_record(repo, actor, resident, decision, evidence, item.nonce)
    issued: dict[str, IssuedCertificate] = {}
    for profile in PROFILES:
        meta = IssuanceMeta(resident_id=resident.id, card_id=card.id, device_id=item.device_id,
                            proofing_event_id=event.id, key_origin="device")  # fmt: skip
        issued[profile] = authority.issue_prepared(prepared[profile], BoundStore(repo, meta))
    return event, issued
