"""Pre-issuance linting with pkilint's RFC 5280 (``pkix``) validators, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from pkilint import loader
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

from ca.errors import LintFailed

_BLOCKING = (ValidationFindingSeverity.FATAL, ValidationFindingSeverity.ERROR)


@dataclass(frozen=True)
class LintReport:
    blocking: tuple[str, ...]
    other: tuple[str, ...]


class PkixLinter:
    """Runs every pkilint ``pkix`` certificate validator, as ``lint_pkix_cert`` does."""

    def __init__(self) -> None:
        self._validator = certificate.create_pkix_certificate_validator_container(
            certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
            [
                certificate.create_issuer_validator_container([]),
                certificate.create_validity_validator_container(),
                certificate.create_subject_validator_container([]),
                certificate.create_extensions_validator_container([]),
                certificate.create_spki_validator_container([]),
            ],
        )
        self._loader = loader.RFC5280CertificateDocumentLoader()

    def report(self, cert_der: bytes) -> LintReport:
        try:
            document = self._loader.load_der_document(cert_der, "lint-copy")
        except ValueError as exc:
            return LintReport(blocking=(f"FATAL decode: {exc}",), other=())
        blocking: list[str] = []
        other: list[str] = []
        for result in self._validator.validate(document.root):
            for found in result.finding_descriptions:
                line = f"{found.finding.severity.name} {found.finding.code} at {result.node.path}"
                if found.message:
                    line += f": {found.message}"
                (blocking if found.finding.severity in _BLOCKING else other).append(line)
        return LintReport(blocking=tuple(blocking), other=tuple(other))

    def check(self, cert_der: bytes) -> LintReport:
        """Raise ``LintFailed`` listing the findings when any is ERROR or FATAL."""
        report = self.report(cert_der)
        if report.blocking:
            raise LintFailed(list(report.blocking))
        return report
