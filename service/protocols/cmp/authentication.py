"""Who sent a request, from its protection, and how the answer is protected.

- MAC (PBM): the senderKID names a proofing event; the shared secret is that event's one-time enrollment secret,
  recomputed on the token (service/flows/enrollment.py), never stored. The answer is MAC-protected with it.
- Signature: the signer is a certificate this CA issued, named by the request (kur: oldCertID, rr: the
  certificate to revoke, certConf: the transaction's signer) or sent as the first extraCert. The answer is
  signed by the CMP responder (service/protocols/cmp/responder.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.der import encoder

from service.db.models import CertificateRecord
from service.db.registry_models import ProofingEvent
from service.errors import AuthenticationLocked, CertificateNotFound, ProofingEventNotFound
from service.flows.enrollment import enrollment_secret
from service.flows.lockout import failed, refuse_if_locked
from service.protocols.cmp.errors import CmpRejected
from service.protocols.cmp.messages import Message, Protector, protected_part
from service.protocols.cmp.protection import MacProtector, SignatureProtector, is_pbm, verify_pbm, verify_signature
from service.protocols.cmp.responder import responder
from service.runtime import Runtime


@dataclass(frozen=True)
class Requester:
    sender: str  # the proofing event id (MAC) or the signer certificate's serial hex
    protector: Protector
    event: ProofingEvent | None = None
    record: CertificateRecord | None = None


def signed_by_responder(rt: Runtime, issuer: str) -> SignatureProtector:
    r = responder(rt, issuer)
    return SignatureProtector(r.key, r.certificate, r.chain)


def authenticate(rt: Runtime, message: Any, issuer: str, signer_serial: int | None) -> Requester:
    header = message["header"]
    if not header["protectionAlg"].isValue or not message["protection"].isValue:
        raise CmpRejected("badMessageCheck", "the request is not protected")
    if is_pbm(header["protectionAlg"]):
        return _mac(rt, message)
    return _signature(rt, message, issuer, signer_serial)


def _mac(rt: Runtime, message: Message) -> Requester:
    header = message["header"]
    if not header["senderKID"].isValue:
        raise CmpRejected("badMessageCheck", "a MAC-protected request names its proofing event as senderKID")
    try:
        event_id = bytes(header["senderKID"]).decode()
    except UnicodeDecodeError:
        raise CmpRejected("badMessageCheck", "unknown proofing event or wrong secret") from None
    try:
        refuse_if_locked(rt)
    except AuthenticationLocked as exc:
        raise CmpRejected("notAuthorized", str(exc)) from None
    secret = enrollment_secret(rt, event_id).encode()  # computed for unknown ids too: no timing oracle
    try:
        event: ProofingEvent | None = rt.repo.proofing_event(event_id)
    except ProofingEventNotFound:
        event = None
    try:
        params = verify_pbm(header["protectionAlg"], secret, protected_part(message), message["protection"].asOctets())
        if event is None:
            raise CmpRejected("badMessageCheck", "unknown proofing event or wrong secret")
    except CmpRejected as exc:
        if exc.fail_info == "badMessageCheck":
            try:
                failed(rt, "cmp", event.id if event is not None else None)  # counted, audited; may lock or burn
            except AuthenticationLocked as locked:
                raise CmpRejected("notAuthorized", str(locked)) from None
        raise
    return Requester(sender=event.id, protector=MacProtector(params, secret), event=event)


def _signature(rt: Runtime, message: Message, issuer: str, signer_serial: int | None) -> Requester:
    record = _signer_record(rt, message, signer_serial)
    if record is None or record.certificate_der is None:
        raise CmpRejected("signerNotTrusted", "the signer's certificate was not issued by this CA")
    certificate = x509.load_der_x509_certificate(record.certificate_der)
    verify_signature(certificate.public_key(), message["header"]["protectionAlg"], protected_part(message),
                     message["protection"].asOctets())  # fmt: skip
    return Requester(sender=record.serial_hex, protector=signed_by_responder(rt, issuer), record=record)


def _signer_record(rt: Runtime, message: Message, signer_serial: int | None) -> CertificateRecord | None:
    if signer_serial is not None:
        try:
            return rt.repo.certificate(signer_serial)
        except CertificateNotFound:
            return None
    extra = message["extraCerts"]
    if not extra.isValue or len(extra) == 0:
        return None
    der = bytes(encoder.encode(extra[0]))
    return rt.repo.certificate_by_der(x509.load_der_x509_certificate(der).public_bytes(Encoding.DER))
