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
