"""What CMP asks of the service flows for kur and rr, on behalf of the holder; the policy decides both.

CMP is authenticated by the holder's own key, so it acts as the holder's app: the actor ``cmp`` with the
``holder_app`` role (it has no API token; it cannot log in). The evidence is what the signature shows:

- kur of a phone certificate (key made on the phone, bound to a card): phone_cert_issue over online_sign_cert
  with derived_certificate + device_generated_key, i.e. P11-REKEY, as POST /v1/phone-renewals;
- kur of any other certificate: cert_renew over online_sign_cert with the signing certificate as evidence
  (card_sign_certificate for a signature certificate, derived_certificate otherwise, plus device_generated_key
  when the current key was made on the holder's chip); current-2022 refuses it (P12/P6), proposal-246 allows
  it for a chip-generated signature key (P246-CERT-RENEW);
- rr: revoke over online_sign_cert with the same evidence (REVOKE-SIGN-CERT allows a signature certificate).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from sqlmodel import Session, select

from ca.issuance import IssuedCertificate, IssueRequest
from service.cmp.errors import CmpRejected
from service.db.models import CertificateRecord
from service.db.registry_models import Actor, ProofingEvent, Resident
from service.db.repository import IssuanceMeta, utc
from service.flows.issuance import BoundStore, holder_of
from service.flows.phone import decide_online
from service.flows.revocation import revoke
from service.policy.model import Channel, Evidence, Operation
from service.runtime import Runtime

ACTOR_NAME = "cmp"


def cmp_actor(rt: Runtime) -> Actor:
    """The inactive holder_app actor CMP acts as; made once. Its token digest is of a value nobody holds."""
    with Session(rt.repo.engine) as session:
        actor = session.exec(select(Actor).where(Actor.name == ACTOR_NAME, Actor.role == "holder_app")).first()
        if actor is None:
            digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
            actor = Actor(name=ACTOR_NAME, role="holder_app", token_sha256=digest, active=False,
                          created_at=datetime.now(UTC))  # fmt: skip
            session.add(actor)
            session.commit()
            session.refresh(actor)
        return actor


def is_phone(record: CertificateRecord) -> bool:
    return record.key_origin == "device" and record.card_id is not None and record.device_id is not None


def evidence_of(record: CertificateRecord) -> frozenset[Evidence]:
    """What a request signed with this certificate's key shows. device_generated_key only when the current key
    was made on the holder's chip (key_origin "device"): CMP cannot see where the new key was made."""
    device = {Evidence.DEVICE_GENERATED_KEY} if record.key_origin == "device" else set()
    if is_phone(record):
        return frozenset({Evidence.DERIVED_CERTIFICATE, *device})
    if record.profile == "signature":
        return frozenset({Evidence.CARD_SIGN_CERTIFICATE, *device})
    return frozenset({Evidence.DERIVED_CERTIFICATE, *device})


def _resident(rt: Runtime, record: CertificateRecord) -> Resident:
    if record.resident_id is None:
        raise CmpRejected("notAuthorized", "the certificate is not bound to a resident")
    return rt.repo.resident_by_id(record.resident_id)


def rekey(rt: Runtime, record: CertificateRecord, public_key: CertificatePublicKeyTypes) -> IssuedCertificate:
    """A new certificate for a new key, from the current one; the current one is then revoked as superseded."""
    actor, resident = cmp_actor(rt), _resident(rt, record)
    operation = Operation.PHONE_CERT_ISSUE if is_phone(record) else Operation.CERT_RENEW
    evidence = evidence_of(record)
    repo, decision, assurance = decide_online(rt, actor, resident, evidence, operation)
    card = rt.repo.card_by_id(record.card_id) if record.card_id is not None else None
    card_expires = datetime.combine(card.expires_on, datetime.min.time(), UTC) if card else None
    request = IssueRequest(record.profile, None, holder_of(rt, resident, card_expires), assurance,
                           predecessor_not_after=utc(record.not_after), requested_key=public_key)  # fmt: skip
    prepared = rt.authority().prepare(request)
    now = datetime.now(UTC).replace(microsecond=0)
    event = repo.record_proofing(
        ProofingEvent(
            id=str(uuid.uuid4()), actor_id=actor.id or 0, resident_id=resident.id or 0, operation=operation.value,
            channel=Channel.ONLINE_SIGN_CERT.value, evidence=json.dumps(sorted(e.value for e in evidence)),
            regime=decision.regime, rule_id=decision.rule_id, assurance_level=str(decision.assurance),
            policy_oid=str(decision.policy_oid), conditions=json.dumps(list(decision.conditions)),
            created_at=now, expires_at=now, used_at=now,
        )
    )  # fmt: skip
    meta = IssuanceMeta(resident_id=resident.id, card_id=record.card_id, device_id=record.device_id,
                        proofing_event_id=event.id, replaces_serial=record.serial_hex,
                        key_origin=record.key_origin)  # fmt: skip
    issued = rt.authority().issue_prepared(prepared, BoundStore(repo, meta))
    revoke(rt, actor, int(record.serial_hex, 16), "superseded")
    return issued


def revoke_on_request(rt: Runtime, record: CertificateRecord, reason: str) -> CertificateRecord:
    actor = cmp_actor(rt)
    decide_online(rt, actor, _resident(rt, record), evidence_of(record), Operation.REVOKE)
    return revoke(rt, actor, int(record.serial_hex, 16), reason)
