"""Errors of the simulated devices and their clients. Every error raised by devices/ derives from DeviceError."""

from __future__ import annotations

from typing import Any


class DeviceError(Exception):
    """Root of the simulated devices' errors."""


class TokenProfileInvalid(DeviceError):
    """A token capability profile does not validate."""


class ServiceRefused(DeviceError):
    """The service answered with a problem document."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        rule = f" (rule {problem['rule_id']})" if "rule_id" in problem else ""
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}{rule}")
