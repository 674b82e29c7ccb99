"""The pkilint side of pre-issuance linting (ca/lint.py): RFC 5280 (``pkix``) validators, built once per process.

pkilint walks the decoded certificate and, at every node, asks every validator of a container whether it
matches (``NodeVisitor.match``): about 80 validators times about 200 nodes, some 15,000 calls per certificate,
most answering "not this path / not this ASN.1 type". Profiling (scripts/bench_profile.py lint) put that walk
at a third of the lint time. ``_index_dispatch`` keeps pkilint's walk and order but remembers, per (node path,
ASN.1 class), which validators *could* match on their static criteria (path, path pattern, ASN.1 class); every
one of those still runs its own full ``match`` and ``validate``. Validators with a predicate, a supertype test
or their own ``match`` are always asked. So every validator still sees exactly the nodes it matches.
"""

from __future__ import annotations

from typing import Any

from pkilint import loader
from pkilint.document import NodeVisitor
from pkilint.pkix import certificate, extension, name
from pkilint.pkix.certificate.certificate_extension import ExtendedKeyUsageCriticalityValidator
from pkilint.pkix.extension import ExtensionCriticalityValidator
from pkilint.validation import TypeMatchingValidator, ValidationFindingSeverity, ValidatorContainer

from ca.lint import LintReport

_BLOCKING = (ValidationFindingSeverity.FATAL, ValidationFindingSeverity.ERROR)


class PkixValidators:
    """Every pkilint ``pkix`` certificate validator, as ``lint_pkix_cert`` runs them."""

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
        _index_dispatch(self._validator)

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


# ``match`` overrides in pkilint 0.13.3 that begin with ``if not super().match(node): return False`` and only
# add conditions: NodeVisitor's static criteria exclude for them too. Any other override is always asked.
_NARROWING_MATCHES = {
    NodeVisitor.match,
    ExtensionCriticalityValidator.match,
    TypeMatchingValidator.match,
    ExtendedKeyUsageCriticalityValidator.match,
}


def _statically_possible(validator: Any, node: Any) -> bool:
    """False only when the validator's static criteria (those ``NodeVisitor.match`` tests first) exclude the node;
    these depend on the node's path and the Python class of its ASN.1 value alone."""
    if type(validator).match not in _NARROWING_MATCHES:
        return True
    if validator._path is not None and validator._path != node.path:
        return False
    if validator._path_re is not None and validator._path_re.match(node.path) is None:
        return False
    return validator._pdu_class is None or isinstance(node.pdu, validator._pdu_class)


def _index_dispatch(container: ValidatorContainer) -> None:
    """Give ``container`` and its nested containers a walk that skips validators excluded by the index."""
    for child in container.validators:
        if isinstance(child, ValidatorContainer):
            _index_dispatch(child)
    if type(container)._validate_rec is not ValidatorContainer._validate_rec:
        return  # a container with its own walk keeps it
    validators = list(container.validators)
    index: dict[tuple[str, type], tuple[Any, ...]] = {}

    def walk(node: Any, results: list[Any]) -> None:
        key = (node.path, type(node.pdu))
        candidates = index.get(key)
        if candidates is None:
            candidates = index[key] = tuple(v for v in validators if _statically_possible(v, node))
        for v in candidates:
            if v.match(node):
                result = v.validate_wrapper(node)
                if isinstance(result, list):
                    results += result
                else:
                    results.append(result)
        for child_node in node.children.values():
            walk(child_node, results)

    container._validate_rec = walk
