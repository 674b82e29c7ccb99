"""The CA core's parts with their latency measured, for the runtime to wire in (the core knows no metrics)."""

from __future__ import annotations

from ca.lint import LintReport, PkixLinter
from service.observability.metrics import LINT_SECONDS, timed


class MeasuredLinter(PkixLinter):
    def report(self, cert_der: bytes) -> LintReport:
        with timed(LINT_SECONDS):
            return super().report(cert_der)
