"""Re-keying a phone certificate: a new key made on the phone, the request signed with the CURRENT phone key.

Only the newest certificate of a lineage can be renewed (a renewed one is revoked as superseded, so it fails
the "live" check), the card it is bound to must be active, and the policy decides (P11-REKEY).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.issuance import IssuedCertificate, IssueRequest
from ca.keycheck import load_csr
from service.db.registry_models import Actor
from service.db.repository import IssuanceMeta
from service.errors import ProofingEventUnusable
from service.flows.issuance import BoundStore, holder_of
from service.flows.phone import decide_online, spend_nonce_and_record, verify_application
from service.flows.revocation import revoke
from service.policy.model import Evidence
from service.protocol import renewal_bytes
from service.runtime import Runtime


@dataclass(frozen=True)
class PhoneRenewInput:
    current_certificate_pem: bytes
    csr: bytes
    nonce: str
    signature: bytes


def renew_phone_certificate(rt: Runtime, actor: Actor, item: PhoneRenewInput) -> IssuedCertificate:
    current = x509.load_pem_x509_certificate(item.current_certificate_pem)
    record = rt.repo.certificate_by_der(current.public_bytes(Encoding.DER))
    if record is None or record.key_origin != "device" or record.card_id is None:
        raise ProofingEventUnusable("the certificate is not a phone certificate issued here")
    if record.status != "issued":
        raise ProofingEventUnusable(f"only the newest, live certificate of a lineage can be renewed ({record.status})")
    card = rt.repo.card_by_id(record.card_id)
    data = renewal_bytes(item.nonce, record.serial_hex, item.csr)
    verify_application(current, data, item.signature, "the current phone key")
    resident = rt.repo.resident_by_id(card.resident_id)
    evidence = frozenset({Evidence.DERIVED_CERTIFICATE, Evidence.DEVICE_GENERATED_KEY})
    repo, decision, assurance = decide_online(rt, actor, resident, evidence)
    holder = holder_of(rt, resident, datetime.combine(card.expires_on, datetime.min.time(), UTC))
    request = IssueRequest(record.profile, load_csr(item.csr), holder, assurance,
                           predecessor_not_after=record.not_after.replace(tzinfo=UTC))  # fmt: skip
    prepared = rt.authority().prepare(request)
    event = spend_nonce_and_record(repo, actor, resident, decision, evidence, item.nonce)
    meta = IssuanceMeta(resident_id=resident.id, card_id=card.id, device_id=record.device_id,
                        proofing_event_id=event.id, replaces_serial=record.serial_hex, key_origin="device")  # fmt: skip
    issued = rt.authority().issue_prepared(prepared, BoundStore(repo, meta))
    revoke(rt, actor, int(record.serial_hex, 16), "superseded")
    return issued
