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
