"""PAdES signing of a PDF with a holder key on its token (pyHanko), optionally with a signature time-stamp
from an RFC 3161 TSA (B-T) and revocation information embedded (B-LT: a DSS with the OCSP responses and CRLs
fetched at signing time for the signer's chain and for the TSA's)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError as PyHankoPdfError
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathValidationError

from hsm import TokenSession
from service.pdf.attributes import describe, document_signing_problems
from service.pdf.chain import Chain
from service.pdf.errors import CertificateNotForSigning, PdfUnreadable, SigningFailed
from service.pdf.timestamp import time_stamper
from service.pdf.token_signer import TokenPkcs11Signer, check_key_matches

FIELD_NAME = "KoshinSignature"
SIGNER_KEY_USAGE = {"digital_signature", "non_repudiation"}


@dataclass(frozen=True)
class SigningRequest:
    """What to sign with: a key on a logged-in token, its certificate and chain, whether to embed revocation
    information (``ltv``; needs the responders named in the certificates to answer), and the RFC 3161 TSA that
    time-stamps the signature (``tsa_url``; PAdES B-T, and B-LT together with ``ltv``)."""

    token: TokenSession
    key_label: str
    certificate: x509.Certificate
    chain: Chain
    ltv: bool = False
    reason: str | None = None
    tsa_url: str | None = None


def require_document_signing(certificate: x509.Certificate) -> None:
    """Refuse a certificate that may not sign documents, before the token is asked for anything."""
    problems = document_signing_problems(certificate)
    if problems:
        raise CertificateNotForSigning(f"{describe(certificate)} may not sign documents: {'; '.join(problems)}")


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def sign_pdf_bytes(pdf: bytes, request: SigningRequest) -> bytes:
    """The signed PDF (an incremental update of ``pdf``)."""
    require_document_signing(request.certificate)
    check_key_matches(request.token, request.key_label, request.certificate)
    validation_context = None
    if request.ltv:
        validation_context = ValidationContext(
            trust_roots=[_asn1(request.chain.root)],
            other_certs=[_asn1(c) for c in request.chain.intermediates],
            allow_fetching=True,
            revocation_mode="hard-fail",
        )
    metadata = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=request.ltv,
        validation_context=validation_context,
        signer_key_usage=SIGNER_KEY_USAGE,
        reason=request.reason,
    )
    signer = TokenPkcs11Signer(request.token, request.key_label, request.certificate, request.chain.certificates)
    stamper = time_stamper(request.tsa_url) if request.tsa_url else None
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except (PyHankoPdfError, ValueError) as exc:
        raise PdfUnreadable(f"not a readable PDF: {exc}") from exc
    try:
        out = signers.PdfSigner(metadata, signer=signer, timestamper=stamper).sign_pdf(writer)
    except (SigningError, PathValidationError, TimestampRequestError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise SigningFailed(f"pyHanko refused to sign: {exc}{cause}") from exc
    return bytes(out.getvalue())
