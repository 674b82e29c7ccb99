"""CRMF (RFC 4211) certificate requests: the requested public key and its signature proof of possession.

Only the template's public key is used (the profile and holder record decide everything else, as for a CSR);
the POP is the signature over the DER of CertRequest with that key (RFC 4211 §4.1, no poposkInput).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc4211, rfc5280

from ca.errors import CsrInvalid
from ca.keycheck import check_spki_encoding
from service.protocols.cmp.errors import CmpRejected
from service.protocols.cmp.protection import verify_signature

ID_REGCTRL_OLD_CERT_ID = "1.3.6.1.5.5.7.5.1.5"


@dataclass(frozen=True)
class CertRequest:
    cert_req_id: int
    public_key: CertificatePublicKeyTypes
    asks_subject: bool  # the template names a subject (the issued one is the profile's: grantedWithMods)
    old_serial: int | None  # kur: the oldCertID control


def _public_key(template: Any) -> CertificatePublicKeyTypes:
    if not template["publicKey"].isValue:
        raise CmpRejected(
            "badCertTemplate", "the certTemplate has no publicKey (central key generation is not offered)"
        )
    spki = rfc5280.SubjectPublicKeyInfo()
    spki["algorithm"] = template["publicKey"]["algorithm"]
    spki["subjectPublicKey"] = template["publicKey"]["subjectPublicKey"]
    der = bytes(encoder.encode(spki))
    try:
        check_spki_encoding(der)
    except CsrInvalid as exc:
        raise CmpRejected("badCertTemplate", str(exc)) from None
    try:
        return load_der_public_key(der)  # type: ignore[return-value]
    except (ValueError, UnsupportedAlgorithm):
        raise CmpRejected("badCertTemplate", "the certTemplate's publicKey does not parse") from None


def old_cert_serial(body: Any) -> int | None:
    """The serial in the oldCertID control of a kur's (first) request, read before anything is verified."""
    return _old_serial(body[0]["certReq"]) if len(body) else None


def _old_serial(request: Any) -> int | None:
    controls = request["controls"]
    if not controls.isValue:
        return None
    for control in controls:
        if str(control["type"]) == ID_REGCTRL_OLD_CERT_ID:
            try:
                cert_id, _ = decoder.decode(bytes(control["value"]), asn1Spec=rfc4211.CertId())
            except (PyAsn1Error, ValueError, TypeError):
                raise CmpRejected("badDataFormat", "the oldCertID control does not decode") from None
            return int(cert_id["serialNumber"])
    return None


def certificate_request(body: Any) -> CertRequest:
    """The one CertReqMsg of an ir/kur, its POP verified."""
    if len(body) != 1:
        raise CmpRejected("badRequest", "exactly one certificate request per message is supported")
    message = body[0]
    request = message["certReq"]
    public_key = _public_key(request["certTemplate"])
    popo = message["popo"]
    if not popo.isValue or popo.getName() != "signature":
        raise CmpRejected("badPOP", "a signature proof of possession is required")
    signing = popo["signature"]
    if signing["poposkInput"].isValue:
        raise CmpRejected("badPOP", "poposkInput is not supported; sign the CertRequest itself")
    try:
        verify_signature(public_key, signing["algorithmIdentifier"], bytes(encoder.encode(request)),
                         signing["signature"].asOctets())  # fmt: skip
    except CmpRejected as exc:
        raise CmpRejected("badPOP", f"proof of possession refused: {exc.text}") from None
    return CertRequest(
        cert_req_id=int(request["certReqId"]),
        public_key=public_key,
        asks_subject=bool(request["certTemplate"]["subject"].isValue),
        old_serial=_old_serial(request),
    )
