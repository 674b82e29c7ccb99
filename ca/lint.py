"""Pre-issuance linting (Boulder's lint-first): the report, and the linter the CA core calls.

pkilint and the ASN.1 modules under it take about half a second to import, so they are loaded when the first
linter is made (ca/pkix_lint.py), not by every ``koshin`` command that imports the CA core.
"""

from __future__ import annotations

from dataclasses import dataclass

from ca.errors import LintFailed


@dataclass(frozen=True)
class LintReport:
    blocking: tuple[str, ...]
    other: tuple[str, ...]


class PkixLinter:
    """Runs every pkilint ``pkix`` certificate validator, as ``lint_pkix_cert`` does."""

    def __init__(self) -> None:
        from ca.pkix_lint import PkixValidators

        self._validators = PkixValidators()

    def report(self, cert_der: bytes) -> LintReport:
        return self._validators.report(cert_der)

    def check(self, cert_der: bytes) -> LintReport:
        """Raise ``LintFailed`` listing the findings when any is ERROR or FATAL."""
        report = self.report(cert_der)
        if report.blocking:
            raise LintFailed(list(report.blocking))
        return report
