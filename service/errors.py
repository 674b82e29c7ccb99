"""Errors of the service layer. Every error raised by service/ derives from ServiceError."""

from __future__ import annotations


class ServiceError(Exception):
    """Root of the service layer's errors."""


class ConfigurationError(ServiceError):
    """The settings cannot work (no PIN for an external token, unreadable PIN file, …)."""


class CertificateNotFound(ServiceError):
    """No certificate with that serial number is stored."""


class RevocationRefused(ServiceError):
    """The certificate cannot be revoked in its current state (already revoked, never issued)."""


class NotFound(ServiceError):
    """A registry object named in the request does not exist."""


class ResidentNotFound(NotFound):
    """No resident with that number."""


class MunicipalityNotFound(NotFound):
    """No municipality with that code."""


class CardNotFound(NotFound):
    """No card with that number."""


class ProofingEventNotFound(NotFound):
    """No proofing event with that id."""


class ProofingEventUnusable(ServiceError):
    """The proofing event was already used, has expired, or does not fit the request."""


class ProofingEventNotYours(ServiceError):
    """The proofing event was recorded by another actor, who is neither this one nor a colleague its rule admits."""


class CardUnusable(ServiceError):
    """The card is lost, revoked, superseded or expired: nothing new is issued for it."""


class RegistryConflict(ServiceError):
    """The request conflicts with the stored registry record (a card issued before the holder's birth)."""


class AuthenticationLocked(ServiceError):
    """Too many failed authentications for this proofing event or from this source: wait, or ask again."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PolicyDenied(ServiceError):
    """The assurance-level policy refuses the operation; carries the rule and its reason."""

    def __init__(self, rule_id: str, reason: str, regime: str) -> None:
        self.rule_id, self.reason, self.regime = rule_id, reason, regime
        super().__init__(f"policy {regime} rule {rule_id}: {reason}")


class AuthenticationRequired(ServiceError):
    """No valid API token was presented."""


class RoleForbidden(ServiceError):
    """The actor's role may not call this endpoint."""


class InputRefused(ServiceError):
    """Text the database cannot hold faithfully (a NUL character), refused before any statement runs."""


class RequestTooLarge(ServiceError):
    """The request body exceeds the configured limit."""


class InvalidSerial(ServiceError):
    """A serial number in a request is not a positive hexadecimal number."""


class OutsideJurisdiction(ServiceError):
    """Municipal staff may change only the registry of their own municipality."""


class EnrollmentSecretInvalid(ServiceError):
    """A protocol client (EST, CMP) presented an unknown proofing event or the wrong one-time secret."""


class TlsRequired(ServiceError):
    """An endpoint that receives a secret (EST simpleenroll's Basic auth) was called without TLS."""


class IssuanceInterrupted(ServiceError):
    """An issuance's outcome could not be recorded as planned (reconciliation resolved its intents meanwhile);
    nothing was delivered."""


class ReplayRefused(ServiceError):
    """A protocol message reuses what may be used once (a CMP transactionID or senderNonce)."""

    def __init__(self, what: str, message: str) -> None:
        self.what = what
        super().__init__(message)


class CrlUnavailable(ServiceError):
    """No CRL of that CA is stored yet (publication runs at start-up and after revocations)."""


class CheckpointMalformed(ServiceError):
    """A published checkpoint line cannot be read."""


class AuditKeyMissing(ServiceError):
    """The token holds no audit key yet (an installation from before checkpoints, not yet re-initialised)."""


class AuditKeyUnsound(ServiceError):
    """A key under the audit key's label breaks koshin's key rule; it is not used."""


class ChainRewound(ServiceError):
    """The chain is shorter than the newest checkpoint says: no checkpoint is signed over it."""


class NothingToCheckpoint(ServiceError):
    """The audit log is empty."""


class CheckpointNumberTaken(ServiceError):
    """Another writer stored a checkpoint with that number first."""


class CrlNumberTaken(ServiceError):
    """A CRL with that number is already stored for that issuer (publication ran without its lock)."""


class NotAnchored(ServiceError):
    """No signed checkpoint with a Merkle tree head covers the record yet (or the stored tree does not match it)."""


class IncidentInvalid(ServiceError):
    """A bad incident name, predicate or action, or a predicate that differs from the incident's recorded one
    (``koshin incident``, service/flows/incident.py)."""
