"""Errors of the policy engine. Every error raised by service/policy/ derives from PolicyError."""

from __future__ import annotations


class PolicyError(Exception):
    """Root of the policy engine's errors."""


class RegimeNotFound(PolicyError):
    """No regime file of that name (or the name is not a plain regime name)."""


class RegimeInvalid(PolicyError):
    """A regime file does not validate: unknown keys, duplicate rule ids, a change aimed at no rule, …"""


class AssuranceUnmapped(PolicyError):
    """An allowing rule names an assurance level for which no certificatePolicies OID was given."""
