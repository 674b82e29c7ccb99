"""Validation of the PAdES signatures in a PDF against a koshin root (pyHanko's validator), reporting what a
relying party needs: who signed (the JPKI attributes), when the signer says it signed, whether the signed
bytes are intact, and the certificate's revocation status.

Revocation is checked live (OCSP/CRL fetched from the URLs in the certificates, hard-fail) unless the
document carries a DSS: then only the embedded OCSP responses and CRLs are used, judged at the time its
signature time-stamp states (PAdES B-LT), which pyHanko verifies against the TSA's chain to the same root in
the same validation. A DSS without a time-stamp (B-B plus a DSS, as koshin made them before it had a TSA) is
judged at the signer's claimed time, and the report says so: that time is only the signer's word."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from service.pdf.attributes import HolderAttributes, document_signing_problems, holder_attributes
from service.pdf.errors import PdfUnreadable
from service.pdf.timestamp import TimeStampReport, stated_time, time_stamp_report

Revocation = Literal["good", "revoked", "unknown"]
Source = Literal["live", "embedded"]
Moment = Literal["now", "time-stamp", "claimed"]  # the time the revocation data is judged at
KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=True)


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    signer_subject: str
    signer_serial: str
    attributes: HolderAttributes
    signing_time: datetime | None
    integrity: Literal["intact", "modified"]
    coverage: str
    trusted: bool
    trust_problem: str | None
    revocation: Revocation
    revocation_source: Source
    revocation_moment: Moment = "now"
    revocation_judged_at: datetime | None = None  # None: now
    timestamp: TimeStampReport | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    usage_problems: list[str] = field(default_factory=list)
    valid: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field_name, "valid": self.valid, "signer": self.signer_subject,
            "serial": self.signer_serial, "attributes": self.attributes.as_dict(),
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "integrity": self.integrity, "coverage": self.coverage, "trusted": self.trusted,
            "trust_problem": self.trust_problem, "revocation": self.revocation,
            "revocation_source": self.revocation_source, "revocation_moment": self.revocation_moment,
            "revocation_judged_at": self.revocation_judged_at.isoformat() if self.revocation_judged_at else None,
            "timestamp": self.timestamp.as_dict() if self.timestamp else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": self.revocation_reason, "usage_problems": self.usage_problems,
        }  # fmt: skip


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


@dataclass(frozen=True)
class _Contexts:
    signer: ValidationContext
    timestamp: ValidationContext
    source: Source
    moment: Moment
    judged_at: datetime | None


def _contexts(
    reader: PdfFileReader, sig: EmbeddedPdfSignature, root: x509.Certificate, others: list[x509.Certificate]
) -> _Contexts:
    """Live: fetch revocation data now. Embedded (a DSS): only the DSS, at the time-stamped time (else at the
    signer's claimed time); the time-stamp token itself is checked at that moment against the same DSS."""
    kwargs: dict[str, Any] = {"trust_roots": [_asn1(root)], "other_certs": [_asn1(c) for c in others],
                              "revocation_mode": "hard-fail"}  # fmt: skip
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        live = ValidationContext(allow_fetching=True, **kwargs), ValidationContext(allow_fetching=True, **kwargs)
        return _Contexts(*live, "live", "now", None)
    stamped = stated_time(sig.signer_info)
    moment: Moment = "time-stamp" if stamped is not None else "claimed"
    at = stamped if stamped is not None else sig.self_reported_timestamp
    kwargs |= {"allow_fetching": False, "moment": at, "retroactive_revinfo": True}
    return _Contexts(dss.as_validation_context(kwargs), dss.as_validation_context(kwargs), "embedded", moment, at)


def _answered(context: ValidationContext, signer: asn1_x509.Certificate) -> bool:
    """Whether an OCSP response about the signer's certificate, or a CRL of its issuer, was at hand (fetched or
    embedded). pyHanko's hard-fail passes a certificate that names no revocation source at all; koshin does
    not call that "good"."""
    for response in context.ocsps:
        try:
            singles = response["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]
        except (KeyError, TypeError, ValueError):
            continue
        if any(single["cert_id"]["serial_number"].native == signer.serial_number for single in singles):
            return True
    return any(crl["tbs_cert_list"]["issuer"] == signer.issuer for crl in context.crls)


def _report(reader: PdfFileReader, sig: EmbeddedPdfSignature, root: x509.Certificate,
            others: list[x509.Certificate]) -> SignatureReport:  # fmt: skip
    signer = x509.load_der_x509_certificate(sig.signer_cert.dump())
    contexts = _contexts(reader, sig, root, others)
    context = contexts.signer
    status: PdfSignatureStatus = validate_pdf_signature(sig, context, contexts.timestamp, key_usage_settings=KEY_USAGE)
    stamp = time_stamp_report(status.timestamp_validity)
    revocation: Revocation = "unknown"
    revoked_at, reason = None, None
    if status.revoked and status.revocation_details is not None:
        revocation = "revoked"
        revoked_at = status.revocation_details.revocation_date
        reason = str(status.revocation_details.revocation_reason.native)
        if status.revocation_details.ca_revoked:
            reason = f"issuing CA revoked: {reason}"
    elif status.trusted and _answered(context, sig.signer_cert):
        revocation = "good"
    problem = status.trust_problem_indic
    usage = document_signing_problems(signer)
    intact = status.intact and status.valid
    modification = status.modification_level
    coverage = status.coverage.name if status.coverage is not None else "unknown"
    if modification is not None:
        coverage = f"{coverage}; later changes: {modification.name}"
    return SignatureReport(
        field_name=str(sig.field_name),
        signer_subject=signer.subject.rfc4514_string(),
        signer_serial=f"{signer.serial_number:040x}",
        attributes=holder_attributes(signer),
        signing_time=sig.self_reported_timestamp,
        integrity="intact" if intact else "modified",
        coverage=coverage,
        trusted=status.trusted,
        trust_problem=None if problem is None else str(problem.standard_name),
        revocation=revocation,
        revocation_source=contexts.source,
        revocation_moment=contexts.moment,
        revocation_judged_at=contexts.judged_at,
        timestamp=stamp,
        revoked_at=revoked_at,
        revocation_reason=reason,
        usage_problems=usage,
        valid=bool(status.bottom_line)
        and intact
        and revocation == "good"
        and not usage
        and (stamp is None or stamp.valid),
    )


def verify_pdf_bytes(pdf: bytes, root: x509.Certificate, others: list[x509.Certificate]) -> list[SignatureReport]:
    """One report per signature, in document order. ``others``: CA certificates that help build paths."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = list(reader.embedded_regular_signatures)
    except (PdfReadError, ValueError) as exc:
        raise PdfUnreadable(f"not a readable PDF: {exc}") from exc
    if not signatures:
        raise PdfUnreadable("the PDF has no signature")
    return [_report(reader, sig, root, others) for sig in signatures]


def embedded_revocation_counts(pdf: bytes) -> tuple[int, int]:
    """How many OCSP responses and CRLs the document's DSS holds (0, 0 without a DSS)."""
    try:
        dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf), strict=False))
    except NoDSSFoundError:
        return 0, 0
    return len(dss.ocsps), len(dss.crls)
