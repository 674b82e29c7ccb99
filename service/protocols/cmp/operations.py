"""The CMP operations: ir, kur, rr, certConf and genm. Each returns the response body (name, value) and whether
implicit confirmation was granted; refusals raise CmpRejected (or a service/CA error the server maps)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280, rfc9480

from service.db.unit import Acting
from service.flows.enrollment import event_actor
from service.flows.issuance import IssueInput, issue_certificate
from service.flows.revocation import revoke_decided
from service.protocols.cmp import messages, transactions
from service.protocols.cmp.authentication import Requester
from service.protocols.cmp.crmf import certificate_request
from service.protocols.cmp.errors import CmpRejected
from service.protocols.cmp.renewal import attested_chain, rekey, revoke_on_request
from service.runtime import Runtime

ID_IT_CA_CERTS = univ.ObjectIdentifier("1.3.6.1.5.5.7.4.17")  # RFC 9480
ID_CE_REASON_CODE = univ.ObjectIdentifier("2.5.29.21")
# CRLReason values a holder may ask for (RFC 5280 §5.3.1); CA and attribute-authority compromise, hold and
# removeFromCRL are the CA's business.
HOLDER_REASONS = {0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded",
                  5: "cessationOfOperation", 9: "privilegeWithdrawn"}  # fmt: skip
HASHES: dict[str, hashes.HashAlgorithm] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256(),
    "2.16.840.1.101.3.4.2.2": hashes.SHA384(),
    "2.16.840.1.101.3.4.2.3": hashes.SHA512(),
}


@dataclass(frozen=True)
class Reply:
    body_name: str
    body: Any
    implicit_confirm: bool = False
    nonce: bytes | None = None  # the answer's senderNonce when the certConf must echo it


def _issued(rt: Runtime, message: Any, body_name: str, body: Any, serial: int) -> Reply:
    """Grant implicit confirmation when asked; otherwise the transaction waits for a certConf that echoes the
    answer's senderNonce as recipNonce."""
    granted = messages.implicit_confirm_asked(message)
    nonce = None if granted else secrets.token_bytes(16)
    transactions.finish(rt.repo, messages.transaction_id(message), "confirmed" if granted else "waiting",
                        f"{serial:040x}", nonce)  # fmt: skip
    return Reply(body_name, body, granted, nonce)


def initial_request(rt: Runtime, profile: str, message: Any, requester: Requester) -> Reply:
    if requester.event is None:
        raise CmpRejected("notAuthorized", "ir is MAC-protected with the one-time secret of a proofing event")
    transactions.claim(
        rt.repo, messages.transaction_id(message), messages.sender_nonce(message), profile, "ir", requester.sender
    )
    request = certificate_request(message["body"]["ir"])
    event = requester.event
    resident = rt.repo.resident_by_id(event.resident_id)
    issued = issue_certificate(
        rt,
        event_actor(rt, event),
        IssueInput(csr=b"", resident_number=resident.resident_number, certificate_type=profile,
                   proofing_event_id=event.id, public_key=request.public_key, channel="cmp-ir"),
    )  # fmt: skip
    body = messages.cert_rep("ip", request.cert_req_id, issued.certificate, modified=request.asks_subject)
    return _issued(rt, message, "ip", body, issued.intent.serial)


def key_update(rt: Runtime, profile: str, message: Any, requester: Requester) -> Reply:
    record = requester.record
    if record is None:
        raise CmpRejected("notAuthorized", "kur is signed with the key of the certificate to update")
    if record.profile != profile:
        raise CmpRejected("wrongAuthority", f"the certificate is a {record.profile} certificate, not {profile}")
    if record.status == "revoked":
        raise CmpRejected("certRevoked", f"the certificate was revoked ({record.revocation_reason})")
    if record.status != "issued":
        raise CmpRejected("badCertId", f"the certificate is {record.status}")
    transactions.claim(
        rt.repo, messages.transaction_id(message), messages.sender_nonce(message), profile, "kur", requester.sender
    )
    request = certificate_request(message["body"]["kur"])
    if request.old_serial is not None and f"{request.old_serial:040x}" != record.serial_hex:
        raise CmpRejected("badCertId", "oldCertID names another certificate than the signer's")
    old = x509.load_der_x509_certificate(record.certificate_der or b"").public_key()
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if old.public_bytes(*spki) == request.public_key.public_bytes(*spki):
        raise CmpRejected("badCertTemplate", "kur needs a new key pair; the template repeats the current key")
    issued = rekey(rt, record, request.public_key, attested_chain(extra_certificates(message), request.public_key))
    body = messages.cert_rep("kup", request.cert_req_id, issued.certificate, modified=request.asks_subject)
    return _issued(rt, message, "kup", body, issued.intent.serial)


def extra_certificates(message: Any) -> list[x509.Certificate]:
    """The message's extraCerts that parse as X.509 certificates."""
    found = []
    for item in message["extraCerts"] if message["extraCerts"].isValue else ():
        try:
            found.append(messages.from_asn1_certificate(item))
        except ValueError:
            continue
    return found


def revocation_serial(message: Any) -> int:
    details = message["body"]["rr"]
    if len(details) != 1:
        raise CmpRejected("badRequest", "exactly one certificate per revocation request is supported")
    template = details[0]["certDetails"]
    if not template["serialNumber"].isValue:
        raise CmpRejected("badCertId", "the revocation request does not name a serial number")
    return int(template["serialNumber"])


def _reason(message: Any) -> str:
    extensions = message["body"]["rr"][0]["crlEntryDetails"]
    for extension in extensions if extensions.isValue else ():
        if extension["extnID"] == ID_CE_REASON_CODE:
            try:
                code, _ = decoder.decode(bytes(extension["extnValue"]), asn1Spec=rfc5280.CRLReason())
            except (PyAsn1Error, ValueError):
                raise CmpRejected("badDataFormat", "the reasonCode does not decode") from None
            if int(code) not in HOLDER_REASONS:
                raise CmpRejected("badRequest", f"revocation reason {int(code)} cannot be asked for by the holder")
            return HOLDER_REASONS[int(code)]
    return "unspecified"


def revocation(rt: Runtime, profile: str, message: Any, requester: Requester) -> Reply:
    record = requester.record
    if record is None or int(record.serial_hex, 16) != revocation_serial(message):
        raise CmpRejected("notAuthorized", "rr is signed with the key of the certificate to revoke")
    if record.profile != profile:
        raise CmpRejected("wrongAuthority", f"the certificate is a {record.profile} certificate, not {profile}")
    if record.status == "revoked":
        raise CmpRejected("certRevoked", f"the certificate is already revoked ({record.revocation_reason})")
    transactions.claim(
        rt.repo, messages.transaction_id(message), messages.sender_nonce(message), profile, "rr", requester.sender
    )
    reason = _reason(message)
    revoke_on_request(rt, record, reason)
    transactions.finish(rt.repo, messages.transaction_id(message), "done", record.serial_hex)
    return Reply("rp", messages.rev_rep())


def certificate_confirmation(rt: Runtime, profile: str, message: Any, requester: Requester) -> Reply:
    transaction_id = messages.transaction_id(message)
    transactions.use_nonce(rt.repo, messages.sender_nonce(message), transaction_id)
    transaction = transactions.find(rt.repo, transaction_id)
    if transaction is None or transaction.kind not in ("ir", "kur") or transaction.profile != profile:
        raise CmpRejected("badRequest", "certConf for no certificate transaction of this profile")
    if transaction.sender != requester.sender:
        raise CmpRejected("notAuthorized", "certConf from another sender than the request's")
    if transaction.state != "waiting" or transaction.serial_hex is None:
        raise CmpRejected("certConfirmed", f"the transaction is {transaction.state}")
    recip = messages.recip_nonce(message)
    if transaction.answer_nonce is None or recip is None or recip.hex() != transaction.answer_nonce:
        raise CmpRejected("badRecipientNonce", "recipNonce is not the senderNonce of the certificate response")
    statuses = message["body"]["certConf"]
    record = rt.repo.certificate(int(transaction.serial_hex, 16))
    certificate = x509.load_der_x509_certificate(record.certificate_der or b"")
    if len(statuses) != 1:  # an empty certConf rejects every certificate
        return _rejected(rt, transaction_id, record.serial_hex)
    status = statuses[0]
    if status["certHash"].asOctets() != _cert_hash(certificate, status):
        raise CmpRejected("badCertId", "certHash does not match the certificate issued in this transaction")
    if status["statusInfo"].isValue and int(status["statusInfo"]["status"]) == 2:  # rejection
        return _rejected(rt, transaction_id, record.serial_hex)
    transactions.finish(rt.repo, transaction_id, "confirmed")
    return Reply("pkiconf", messages.pki_conf())


def _cert_hash(certificate: x509.Certificate, status: Any) -> bytes:
    if status["hashAlg"].isValue:
        algorithm = HASHES.get(str(status["hashAlg"]["algorithm"]))
        if algorithm is None:
            raise CmpRejected("badAlg", f"certConf hash {status['hashAlg']['algorithm']} is not accepted")
    else:
        algorithm = certificate.signature_hash_algorithm or hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate.public_bytes(Encoding.DER))
    return digest.finalize()


def _rejected(rt: Runtime, transaction_id: bytes, serial_hex: str) -> Reply:
    """The holder refused the certificate: it is revoked (cessationOfOperation) and never used."""
    revoke_decided(rt, Acting(), int(serial_hex, 16), "cessationOfOperation")
    transactions.finish(rt.repo, transaction_id, "rejected")
    return Reply("pkiconf", messages.pki_conf())


def general(rt: Runtime, profile: str, message: Any, requester: Requester | None) -> Reply:
    """genm: the CA certificates (id-it-caCerts, also for an empty genm); other infoTypes come back empty."""
    transactions.claim(
        rt.repo,
        messages.transaction_id(message),
        messages.sender_nonce(message),
        profile,
        "genm",
        requester.sender if requester else "-",
    )
    asked = [itav["infoType"] for itav in message["body"]["genm"]] or [ID_IT_CA_CERTS]
    body = rfc9480.PKIBody()["genp"]
    for info_type in asked:
        itav = rfc9480.InfoTypeAndValue()
        itav["infoType"] = info_type
        if info_type == ID_IT_CA_CERTS:
            certs = univ.SequenceOf(componentType=rfc9480.CMPCertificate())
            issuing = rt.authority().issuers[rt.profiles.profile(profile).issuing_ca].certificate
            root = next(c for c in rt.chain() if c.subject == c.issuer)
            for certificate in (issuing, root):
                certs.append(messages.to_cmp_certificate(certificate))
            itav["infoValue"] = encoder.encode(certs)
        body.append(itav)
    transactions.finish(rt.repo, messages.transaction_id(message), "done")
    return Reply("genp", body)
