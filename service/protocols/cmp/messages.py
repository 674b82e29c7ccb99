"""PKIMessage (RFC 4210 as updated by RFC 9480) decoding and building with pyasn1-alt-modules: no DER by hand.

A response header answers its request: same transactionID, the request's senderNonce as recipNonce, a fresh
senderNonce, and the request's sender as recipient.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280, rfc9480

from service.protocols.cmp.errors import FAIL_INFO, CmpRejected

Message = Any  # a pyasn1 rfc9480.PKIMessage (pyasn1 has no type information)
ID_IT_IMPLICIT_CONFIRM = univ.ObjectIdentifier("1.3.6.1.5.5.7.4.13")
MAX_TRANSACTION_ID = 64  # octets; RFC 4210 asks for 128 random bits
MAX_CLOCK_SKEW = timedelta(minutes=10)


class Protector(Protocol):
    """How a response is protected: a MAC with the request's shared secret, or the CMP responder's signature."""

    def algorithm(self) -> rfc5280.AlgorithmIdentifier: ...

    def sender_kid(self) -> bytes | None: ...

    def protect(self, protected_part_der: bytes) -> bytes: ...

    def extra_certs(self) -> Sequence[x509.Certificate]: ...


@dataclass(frozen=True)
class Sender:
    """The responder's identity in the header: its certificate subject (DER of the Name)."""

    name_der: bytes


def decode(der: bytes) -> Message:
    try:
        message, rest = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise CmpRejected("badDataFormat", f"not a DER PKIMessage: {type(exc).__name__}") from None
    if rest:
        raise CmpRejected("badDataFormat", "trailing data after the PKIMessage")
    header = message["header"]
    if int(header["pvno"]) not in (2, 3):
        raise CmpRejected("unsupportedVersion", f"pvno {int(header['pvno'])} is not cmp2000 or cmp2021")
    tid = header["transactionID"]
    if not tid.isValue or not 16 <= len(tid) <= MAX_TRANSACTION_ID:
        raise CmpRejected("badRequest", "a transactionID of 16 to 64 octets is required")
    nonce = header["senderNonce"]
    if not nonce.isValue or not 16 <= len(nonce) <= MAX_TRANSACTION_ID:
        raise CmpRejected("badSenderNonce", "a senderNonce of 16 to 64 octets is required")
    if header["messageTime"].isValue:
        try:
            sent = header["messageTime"].asDateTime
        except (PyAsn1Error, ValueError):
            raise CmpRejected("badTime", "messageTime does not parse") from None
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
        if abs(datetime.now(UTC) - sent) > MAX_CLOCK_SKEW:
            raise CmpRejected("badTime", f"messageTime {sent:%Y-%m-%dT%H:%M:%SZ} is more than 10 minutes off")
    return message


def protected_part(message: Message) -> bytes:
    part = rfc9480.ProtectedPart()
    part["header"] = message["header"]
    part["body"] = message["body"]
    return bytes(encoder.encode(part))


def body_kind(message: Message) -> str:
    return str(message["body"].getName())


def transaction_id(message: Message) -> bytes:
    return bytes(message["header"]["transactionID"])


def sender_nonce(message: Message) -> bytes:
    return bytes(message["header"]["senderNonce"])


def recip_nonce(message: Message) -> bytes | None:
    nonce = message["header"]["recipNonce"]
    return bytes(nonce) if nonce.isValue else None


def implicit_confirm_asked(message: Message) -> bool:
    info = message["header"]["generalInfo"]
    return info.isValue and any(itav["infoType"] == ID_IT_IMPLICIT_CONFIRM for itav in info)


def to_cmp_certificate(certificate: x509.Certificate) -> rfc9480.CMPCertificate:
    decoded, _ = decoder.decode(certificate.public_bytes(Encoding.DER), asn1Spec=rfc9480.CMPCertificate())
    return decoded


def from_asn1_certificate(value: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(encoder.encode(value)))


def _copy(target: Any, value: Any) -> Any:
    """Fill a (tagged) SEQUENCE component from an untagged value of the same type; pyasn1 refuses the direct
    assignment because the tags differ."""
    for named in value.componentType.namedTypes:
        if value[named.name].isValue:
            target[named.name] = value[named.name]
    return target


def _name(name_der: bytes) -> rfc5280.Name:
    decoded, _ = decoder.decode(name_der, asn1Spec=rfc5280.Name())
    return decoded


def response(
    request: Message | None,
    body_name: str,
    body_value: Any,
    sender: Sender | None,
    protector: Protector | None,
    *,
    implicit_confirm: bool = False,
    nonce: bytes | None = None,
) -> bytes:
    """Encode a response (to ``request``, when it could be read) and protect it."""
    message = rfc9480.PKIMessage()
    header = message["header"]
    header["pvno"] = int(request["header"]["pvno"]) if request is not None else 2
    if sender is not None:
        header["sender"]["directoryName"]["rdnSequence"] = _name(sender.name_der)["rdnSequence"]
    else:
        header["sender"]["directoryName"]["rdnSequence"] = rfc5280.RDNSequence()
    if request is not None:
        header["recipient"] = request["header"]["sender"]
        header["transactionID"] = transaction_id(request)
        header["recipNonce"] = sender_nonce(request)
    else:
        header["recipient"]["directoryName"]["rdnSequence"] = rfc5280.RDNSequence()
    header["messageTime"] = datetime.now(UTC).strftime("%Y%m%d%H%M%SZ")
    header["senderNonce"] = nonce or secrets.token_bytes(16)
    if implicit_confirm:
        itav = rfc9480.InfoTypeAndValue()
        itav["infoType"] = ID_IT_IMPLICIT_CONFIRM
        itav["infoValue"] = encoder.encode(univ.Null(""))
        header["generalInfo"].append(itav)
    if protector is not None:
        _copy(header["protectionAlg"], protector.algorithm())
        kid = protector.sender_kid()
        if kid is not None:
            header["senderKID"] = kid
    message["body"][body_name] = body_value
    if protector is not None:
        message["protection"] = message["protection"].clone(
            univ.BitString.fromOctetString(protector.protect(protected_part(message)))
        )
        for certificate in protector.extra_certs():
            message["extraCerts"].append(to_cmp_certificate(certificate))
    return bytes(encoder.encode(message))


def status_info(status: str, fail_info: str | None = None, text: str | None = None) -> rfc9480.PKIStatusInfo:
    info = rfc9480.PKIStatusInfo()
    info["status"] = status
    if text:
        info["statusString"].append(text[:500])
    if fail_info is not None:
        bits = [0] * (FAIL_INFO.index(fail_info) + 1)
        bits[-1] = 1
        info["failInfo"] = rfc9480.PKIFailureInfo(tuple(bits))
    return info


def error_body(failure: CmpRejected) -> rfc9480.ErrorMsgContent:
    body = rfc9480.PKIBody()["error"]
    body["pKIStatusInfo"] = status_info("rejection", failure.fail_info, failure.text)
    return body


def cert_rep(
    body_name: str, cert_req_id: int, certificate: x509.Certificate, *, modified: bool
) -> rfc9480.CertRepMessage:
    """An ip or kup with one certificate, ``grantedWithMods`` when the template asked for something else."""
    body = rfc9480.PKIBody()[body_name]
    item = rfc9480.CertResponse()
    item["certReqId"] = cert_req_id
    item["status"] = status_info("grantedWithMods" if modified else "accepted")
    _copy(item["certifiedKeyPair"]["certOrEncCert"]["certificate"], to_cmp_certificate(certificate))
    body["response"].append(item)
    return body


def rev_rep(status: str = "accepted") -> rfc9480.RevRepContent:
    body = rfc9480.PKIBody()["rp"]
    body["status"].append(status_info(status))
    return body


def pki_conf() -> Any:
    return rfc9480.PKIBody()["pkiconf"]
