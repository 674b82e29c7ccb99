"""What CMP asks of the service flows for kur and rr, on behalf of the holder; the policy decides both.

CMP is authenticated by the holder's own key, so it acts as the holder's app: the actor ``cmp`` with the
``holder_app`` role (it has no API token; it cannot log in). The evidence is what the signature shows:

- kur of a phone certificate (key made on the phone, bound to a card): phone_cert_issue over online_sign_cert
  with derived_certificate, plus device_generated_key when the new key's attestation (in extraCerts, bound to
  the certificate being re-keyed) verifies: P11-REKEY, as POST /v1/phone-renewals;
- kur of any other certificate: cert_renew over online_sign_cert with the signing certificate as evidence
  (card_sign_certificate for a signature certificate, derived_certificate otherwise, plus device_generated_key
  for an attested new key); current-2022 refuses it (P12/P6), proposal-246 allows it for an attested
  chip-generated signature key (P246-CERT-RENEW);
- rr: revoke over online_sign_cert with the same evidence (REVOKE-SIGN-CERT allows a signature certificate).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca.errors import CaNotInitialised
from ca.issuance import IssueRequest
from service.db.issuance_context import ContextQuery, IssuanceContext
from service.db.issuance_store import Binding, Spend
from service.db.models import CertificateRecord
from service.db.registry_models import Actor
from service.db.repository import utc
from service.flows.attestation import device_key_evidence
from service.flows.issuance import card_end, holder_of
from service.flows.phone import decide_online, online_proofing
from service.flows.pipeline import IssuedCertificate, Order, Plan
from service.flows.revocation import revoke_decided
from service.policy.model import Evidence, Operation
from service.protocols.cmp.errors import CmpRejected
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
    """What a request signed with this certificate's key shows about the holder. Where a *new* key was made is
    shown only by its key attestation (``attested_chain``), never by the current key's origin."""
    if is_phone(record) or record.profile != "signature":
        return frozenset({Evidence.DERIVED_CERTIFICATE})
    return frozenset({Evidence.CARD_SIGN_CERTIFICATE})


def attested_chain(extra_certs: Sequence[x509.Certificate], public_key: CertificatePublicKeyTypes) -> bytes | None:
    """The attestation chain for ``public_key`` among a message's extraCerts (leaf, then the device's
    certificate, as PEM), or None. The client adds them with ``openssl cmp -extracerts``."""
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    wanted = public_key.public_bytes(*spki)
    for leaf in extra_certs:
        if leaf.public_key().public_bytes(*spki) != wanted:
            continue
        device = next((c for c in extra_certs if c.subject == leaf.issuer and c is not leaf), None)
        if device is not None:
            return leaf.public_bytes(Encoding.PEM) + device.public_bytes(Encoding.PEM)
    return None


def rekey_challenge(record: CertificateRecord) -> bytes:
    """A CMP client picks its own nonces, so a kur's attestation is bound to the certificate it re-keys."""
    return hashlib.sha256(record.certificate_der or b"").digest()


def _context(rt: Runtime, record: CertificateRecord) -> IssuanceContext:
    if record.resident_id is None:
        raise CmpRejected("notAuthorized", "the certificate is not bound to a resident")
    serial = int(record.serial_hex, 16)  # the presented certificate: its card and device bound the auth cap
    query = ContextQuery(resident_id=record.resident_id, policy_facts=True, presented_serial=serial, auth_cap=True)
    return rt.repo.issuance_context(query)


def rekey(
    rt: Runtime, record: CertificateRecord, public_key: CertificatePublicKeyTypes, attestation: bytes | None = None
) -> IssuedCertificate:
    """A new certificate for a new key, from the current one; the current one is revoked as superseded in the
    same outcome transaction. ``attestation``: the new key's attestation chain (PEM), if the client sent one."""
    actor, ctx = cmp_actor(rt), _context(rt, record)
    operation = Operation.PHONE_CERT_ISSUE if is_phone(record) else Operation.CERT_RENEW
    device = device_key_evidence(rt, [("the new key", public_key, attestation)], rekey_challenge(record))
    evidence = evidence_of(record) | device.evidence
    who, decision, assurance = decide_online(rt, actor, ctx, evidence, operation, note=device.refused)
    resident = ctx.holder()
    request = IssueRequest(record.profile, None, holder_of(ctx, card_end(ctx.card_by_id(record.card_id))), assurance,
                           predecessor_not_after=utc(record.not_after), requested_key=public_key,
                           auth_not_after=ctx.auth_not_after if record.profile == "signature" else None)  # fmt: skip
    binding = Binding(resident_id=resident.id, card_id=record.card_id, device_id=record.device_id,
                      replaces_serial=record.serial_hex, key_origin=record.key_origin)  # fmt: skip
    event = online_proofing(actor, resident, decision, evidence, operation)
    plan = Plan(who, Spend(new_event=event), (Order.holder(request, binding),), supersede=(int(record.serial_hex, 16),),
                channel="cmp-kur")  # fmt: skip
    return rt.pipeline().issue(plan).only


def revoke_on_request(rt: Runtime, record: CertificateRecord, reason: str) -> CertificateRecord:
    actor = cmp_actor(rt)
    who, _, _ = decide_online(rt, actor, _context(rt, record), evidence_of(record), Operation.REVOKE, reason)
    return revoke_decided(rt, who, int(record.serial_hex, 16), reason)
