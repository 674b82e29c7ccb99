"""Errors of PDF signing and validation. All derive from ServiceError, so ``koshin`` prints them as one line."""

from __future__ import annotations

from service.errors import ServiceError


class PdfError(ServiceError):
    """Root of the PDF signing and validation errors."""


class CertificateNotForSigning(PdfError):
    """The certificate may not sign documents (a user-authentication certificate, or a wrong key usage).
    Raised before anything is signed."""


class SigningKeyMismatch(PdfError):
    """The token holds no usable key for the certificate, several candidates, or a key of another pair."""


class ChainUnavailable(PdfError):
    """The issuer chain or trust anchor could not be read or fetched, or does not lead to a root."""


class PdfUnreadable(PdfError):
    """The input is not a PDF pyHanko can read, or has no signature to validate."""


class SigningFailed(PdfError):
    """pyHanko refused to produce the signature (e.g. the signer's certificate fails pre-signing validation)."""
