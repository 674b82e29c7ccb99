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

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ca.errors import CaNotInitialised
from ca.issuance import IssueRequest
from service.cmp.errors import CmpRejected
from service.db.issuance_store import Binding, ContextQuery, IssuanceContext, Spend
from service.db.models import CertificateRecord
from service.db.registry_models import Actor
from service.db.repository import utc
from service.flows.issuance import card_end, holder_of
from service.flows.phone import decide_online, online_proofing
from service.flows.pipeline import IssuedCertificate, Order, Plan
from service.flows.revocation import revoke
from service.policy.model import Evidence, Operation
from service.runtime import Runtime

ACTOR_NAME, ACTOR_ROLE = "cmp", "holder_app"


def cmp_actor(rt: Runtime) -> Actor:
    """The inactive holder_app actor CMP acts as, made at provisioning (it cannot log in)."""
    actor = rt.repo.find_actor(ACTOR_NAME, ACTOR_ROLE)
    if actor is None:
        raise CaNotInitialised("the CMP actor is missing: run `koshin init` (or restart the service)")
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


def _context(rt: Runtime, record: CertificateRecord) -> IssuanceContext:
    if record.resident_id is None:
        raise CmpRejected("notAuthorized", "the certificate is not bound to a resident")
    return rt.repo.issuance_context(ContextQuery(resident_id=record.resident_id, policy_facts=True))


def rekey(rt: Runtime, record: CertificateRecord, public_key: CertificatePublicKeyTypes) -> IssuedCertificate:
    """A new certificate for a new key, from the current one; the current one is revoked as superseded in the
    same outcome transaction."""
    actor, ctx = cmp_actor(rt), _context(rt, record)
    operation = Operation.PHONE_CERT_ISSUE if is_phone(record) else Operation.CERT_RENEW
    evidence = evidence_of(record)
    who, decision, assurance = decide_online(rt, actor, ctx, evidence, operation)
    resident = ctx.holder()
    request = IssueRequest(record.profile, None, holder_of(ctx, card_end(ctx.card_by_id(record.card_id))), assurance,
                           predecessor_not_after=utc(record.not_after), requested_key=public_key)  # fmt: skip
    binding = Binding(resident_id=resident.id, card_id=record.card_id, device_id=record.device_id,
                      replaces_serial=record.serial_hex, key_origin=record.key_origin)  # fmt: skip
    event = online_proofing(actor, resident, decision, evidence, operation)
    plan = Plan(who, Spend(new_event=event), (Order.holder(request, binding),), supersede=(int(record.serial_hex, 16),))
    return rt.pipeline().issue(plan).only


def revoke_on_request(rt: Runtime, record: CertificateRecord, reason: str) -> CertificateRecord:
    actor = cmp_actor(rt)
    who, _, _ = decide_online(rt, actor, _context(rt, record), evidence_of(record), Operation.REVOKE)
    return revoke(rt, who, int(record.serial_hex, 16), reason)
