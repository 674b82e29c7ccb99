"""Re-keying a phone certificate: a new key made on the phone, the request signed with the CURRENT phone key.

Only the newest certificate of a lineage can be renewed (a renewed one is revoked as superseded, so it fails
the "live" check), the card it is bound to must be active, and the policy decides (P11-REKEY).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from service.db.issuance_context import ContextQuery
from service.db.issuance_store import Binding, Spend
from service.db.registry_models import Actor
from service.errors import ProofingEventUnusable
from service.flows.attestation import device_key_evidence
from service.flows.authorisation import check_card_usable, hide_foreign
from service.flows.issuance import card_end, holder_of
from service.flows.phone import decide_online, online_proofing, verify_application
from service.flows.pipeline import IssuedCertificate, Order, Plan
from service.policy.model import Evidence, Operation
from service.protocols.phone import renewal_bytes
from service.runtime import Runtime


@dataclass(frozen=True)
class PhoneRenewInput:
    current_certificate_pem: bytes
    csr: bytes
    nonce: str
    signature: bytes
    attestation: bytes | None = None  # the PEM chain the phone made for the new key


def renew_phone_certificate(rt: Runtime, actor: Actor, item: PhoneRenewInput) -> IssuedCertificate:
    current = x509.load_pem_x509_certificate(item.current_certificate_pem)
    query = ContextQuery(presented_der=current.public_bytes(Encoding.DER), policy_facts=True, auth_cap=True)
    ctx = rt.repo.issuance_context(query)
    record = ctx.presented
    if record is None or record.key_origin != "device" or record.card_id is None:
        raise ProofingEventUnusable("the certificate is not a phone certificate issued here")
    if record.status != "issued":
        raise ProofingEventUnusable(f"only the newest, live certificate of a lineage can be renewed ({record.status})")
    card = ctx.card_by_id(record.card_id)
    not_ours = ProofingEventUnusable("the certificate is not a phone certificate issued here")
    hide_foreign(actor, record.resident_id, not_ours, proven=True)
    if card is None:
        raise ProofingEventUnusable("the phone certificate is bound to no card of its holder")
    check_card_usable(card)
    data = renewal_bytes(item.nonce, record.serial_hex, item.csr)
    verify_application(current, data, item.signature, "the current phone key")
    csr = load_csr(item.csr)
    device = device_key_evidence(rt, [("the new key", csr.public_key(), item.attestation)], bytes.fromhex(item.nonce))
    evidence = frozenset({Evidence.DERIVED_CERTIFICATE, *device.evidence})
    who, decision, assurance = decide_online(rt, actor, ctx, evidence, note=device.refused)
    resident = ctx.holder()
    holder = holder_of(ctx, card_end(card))
    request = IssueRequest(record.profile, csr, holder, assurance,
                           predecessor_not_after=record.not_after.replace(tzinfo=UTC),
                           auth_not_after=ctx.auth_not_after if record.profile == "signature" else None)  # fmt: skip
    binding = Binding(resident_id=resident.id, card_id=record.card_id, device_id=record.device_id,
                      replaces_serial=record.serial_hex, key_origin="device")  # fmt: skip
    event = online_proofing(actor, resident, decision, evidence, Operation.PHONE_CERT_ISSUE)
    plan = Plan(who, Spend(nonce=item.nonce, new_event=event), (Order.holder(request, binding),),
                supersede=(int(record.serial_hex, 16),), channel="phone-rekey")  # fmt: skip
    return rt.pipeline().issue(plan).only
