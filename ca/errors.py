"""Errors of the CA core. Every error raised by ca/ derives from CaError."""

from __future__ import annotations


class CaError(Exception):
    """Root of the CA core's errors."""


class CsrInvalid(CaError):
    """The certificate signing request is malformed, unsigned, or asks for a weak or unsupported key."""


class ProfileInvalid(CaError):
    """A profile file does not validate (unknown keys, wrong types, bad OIDs)."""


class ProfileNotFound(CaError):
    """No profile of that name is loaded."""


class HolderInvalid(CaError):
    """The holder record is missing fields or holds values the profile cannot encode."""


class ProfileViolation(CaError):
    """The request asks for something the profile does not allow (key algorithm, holder eligibility)."""


class LintFailed(CaError):
    """pkilint reported ERROR or FATAL findings on the lint copy; nothing was signed by the CA key."""

    def __init__(self, findings: list[str]) -> None:
        self.findings = findings
        super().__init__("pre-issuance lint failed: " + "; ".join(findings))


class SerialCollision(CaError):
    """The store already holds that serial number."""


class IssuanceRefused(CaError):
    """Issuance stopped before the CA key signed (e.g. prepared certificate already used)."""


class CaNotInitialised(CaError):
    """The CA hierarchy has not been created yet (run ``koshin init``)."""


class TsaError(CaError):
    """Root of the time-stamp authority's errors."""


class TsaConfigurationError(TsaError):
    """The TSA certificate does not fit RFC 3161 section 2.3 or is not the token key's certificate."""


class TimeStampRefused(TsaError):
    """A request the TSA does not stamp. ``fail_info`` is the RFC 3161 PKIFailureInfo bit sent back."""

    fail_info = "bad_request"


class RequestMalformed(TimeStampRefused):
    fail_info = "bad_data_format"


class RequestUnsupported(TimeStampRefused):
    """Wrong version, or a request the HTTP layer received with the wrong media type."""

    fail_info = "bad_request"


class NonceRejected(TimeStampRefused):
    """A nonce that is not a positive integer of at most MAX_NONCE_BITS bits."""

    fail_info = "bad_request"


class HashAlgorithmRejected(TimeStampRefused):
    fail_info = "bad_alg"


class PolicyRejected(TimeStampRefused):
    fail_info = "unaccepted_policy"


class ExtensionRejected(TimeStampRefused):
    fail_info = "unaccepted_extensions"


class TsaKeyUnsound(CaError):
    """A TSA key left on the token by an interrupted run breaks koshin's key rule; it is not certified."""


class OcspConfigurationError(CaError):
    """An ``OcspIssuer`` does not hold together (responder not issued by the CA, wrong EKU, key mismatch)."""


class AttestationRefused(CaError):
    """The attestation does not show a key generated on a trusted device for this request; says why."""


class KeyNotExportable(CaError):
    """The private value of a token key cannot be read, serialised or used for decryption."""


class UnknownReason(CaError):
    """The revocation reason is not an RFC 5280 CRLReason name."""


class ValidityError(CaError, ValueError):
    """The requested certificate cannot be given a valid (non-empty) validity period."""


class TextRefused(CaError, ValueError):
    """The text holds a character outside the registry repertoire; says which, where and why."""
