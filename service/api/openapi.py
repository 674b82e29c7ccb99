"""The OpenAPI document (``/openapi.json``): FastAPI's, completed from the code's own facts so a generated client
can type every answer.

- **Errors**: every operation documents each status it can answer with, as ``application/problem+json`` with
  the one ``Problem`` schema; the statuses and their problem types come from the problem table
  (service/api/problems.py), chosen by what the operation has (``_sources``): a bearer role gate, HTTP Basic,
  path parameters, a serial, a body, a write. The description of each lists the problem types it carries.
- **Security**: the bearer scheme with the roles the operation's role gate admits (``x-koshin-roles`` and the
  description), HTTP Basic for EST ``simpleenroll``, CMP message protection described, public operations
  marked as such (``security: []``).
- **Constraints**: registry text points at one ``RegistryText`` schema whose pattern is ca/text.py's repertoire
  (``x-koshin-repertoire`` in a field's schema marks it).
- **Links** from a resident to its proofing events and cards, from a proofing event to the certificate or card
  issued on it, and from a certificate to its status and its revocation (schemathesis's stateful phase walks
  them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ca import errors as ca_errors
from ca.text import REPERTOIRE, repertoire_pattern
from hsm import errors as hsm_errors
from service import errors as svc
from service.api import problems
from service.api.deps import RoleGate, authenticated
from service.api.examples import EXAMPLES
from service.api.links import LINKS
from service.policy.errors import PolicyError

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; koshin's extension members appear where they apply.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "/problems/<slug>: one per row of the problem table"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "rule_id": {"type": "string", "description": "policy-denied: the rule that refused"},
        "reason": {"type": "string", "description": "policy-denied: the rule's reason"},
        "regime": {"type": "string", "description": "policy-denied: the regime that decided"},
        "findings": {"type": "array", "items": {"type": "string"}, "description": "lint-failed: pkilint's findings"},
        "errors": {
            "type": "array",
            "description": "invalid-request: each field the request got wrong",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {"type": "string"}}, "msg": {"type": "string"}},
            },
        },
        "correlation_id": {"type": "string", "description": "internal: quote it; the server log has the rest"},
    },
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An actor's API token (`koshin actors add`). "
               "Each operation lists the roles it admits in `x-koshin-roles`; the policy decides the rest."},
    "estBasic": {"type": "http", "scheme": "basic", "description": "EST (RFC 7030 §3.2.3): user = proofing event "
                 "id, password = its one-time enrollment secret. Served over TLS only."},
}  # fmt: skip
CMP_PROTECTION = ("CMP message protection (RFC 4210 §5.1.3, RFC 9483): `ir` MAC-protected with a proofing event's "
                  "one-time secret (PBMAC1 or password-based MAC), `kur` and `rr` signed with the certificate's key; "
                  "no HTTP authentication.")  # fmt: skip

TEXT_RULE = (
    f"NFC text whose every character is in {REPERTOIRE}, with no control, bidi, format, private-use or "
    "distinguished-name special character, and no white space at either end (ca/text.py)"
)

# What an operation can meet, by what it has. The rows of the problem table come in by their classes.
ALWAYS = (svc.ConfigurationError, hsm_errors.HsmError, ca_errors.CaNotInitialised, PolicyError)
BEARER = (svc.AuthenticationRequired, svc.AuthenticationLocked, svc.RoleForbidden)
BASIC = (svc.EnrollmentSecretInvalid, svc.AuthenticationLocked, svc.TlsRequired)
FOUND = (svc.NotFound, svc.CertificateNotFound)
BODY = (svc.RequestTooLarge,)
WRITE = (
    svc.PolicyDenied, svc.OutsideJurisdiction, svc.ProofingEventNotYours, svc.InputRefused, svc.CardUnusable,
    svc.RegistryConflict, svc.ProofingEventUnusable, svc.RevocationRefused, svc.IssuanceInterrupted,
    ca_errors.CsrInvalid, ca_errors.HolderInvalid, ca_errors.ProfileNotFound, ca_errors.ProfileViolation,
    ca_errors.LintFailed, ca_errors.ValidityError, ca_errors.UnknownReason, ca_errors.SerialCollision,
    ca_errors.IssuanceRefused, *FOUND,
)  # fmt: skip
PUBLICATION = (svc.CrlUnavailable,)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                      routes=app.routes)  # fmt: skip
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["RegistryText"] = {"type": "string", "pattern": repertoire_pattern(), "description": TEXT_RULE}
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's own 422 bodies: koshin sends a Problem
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for route in _api_routes(app):
        for method in route.methods or ():
            _complete(doc["paths"][route.path_format][method.lower()], route, method)
    for name, examples in EXAMPLES.items():
        schemas[name]["examples"] = examples
    _mark_repertoire(doc)
    for (path, method, status), links in LINKS.items():
        doc["paths"][path][method]["responses"][status]["links"] = links
    return doc


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Each operation's route as the document sees it (its prefix and its router's dependencies included)."""
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def _complete(operation: dict[str, Any], route: Any, method: str) -> None:
    roles = _roles(route.dependant)
    if roles is not None:
        operation["security"] = [{"bearer": []}]
        operation["x-koshin-roles"] = sorted(roles)
        note = f"**Roles:** {', '.join(sorted(roles))} (bearer token)."
    elif route.tags and "est" in route.tags and method == "POST":
        operation["security"] = [{"estBasic": []}]
        note = "**Authentication:** HTTP Basic with a proofing event's id and one-time enrollment secret, over TLS."
    elif route.tags and "CMP" in route.tags:
        operation["security"] = []
        operation["x-koshin-protection"] = CMP_PROTECTION
        note = f"**Authentication:** {CMP_PROTECTION}"
    else:
        operation["security"] = []
        note = "**Public:** no authentication."
    operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{note}".strip()
    responses = operation.setdefault("responses", {})
    for status, rows in sorted(_statuses(route, method, roles is not None).items()):
        kinds = "; ".join(f"`{slug}` ({title})" for slug, title in rows)
        if str(status) == "422":  # FastAPI's own validation answer: koshin sends a Problem instead
            responses.pop("422", None)
        entry = responses.setdefault(str(status), {"description": kinds})
        entry.setdefault("content", {})[problems.MEDIA_TYPE] = {"schema": PROBLEM_REF}
    operation["responses"] = dict(sorted(responses.items()))


def _statuses(route: Any, method: str, bearer: bool) -> dict[int, list[tuple[str, str]]]:
    """status -> (slug, title) of every problem the operation can answer with."""
    classes: list[type[Exception]] = list(ALWAYS)
    synthetic: list[tuple[int, str, str]] = []
    params = route.dependant.path_params + route.dependant.query_params
    body = route.body_field is not None or method in ("POST", "PATCH", "PUT")
    if bearer:
        classes += BEARER
    if route.tags and "est" in route.tags and method == "POST":
        classes += BASIC + WRITE
    if route.dependant.path_params:
        classes += FOUND
    if any(p.name == "serial" for p in route.dependant.path_params):
        classes.append(svc.InvalidSerial)
    if body:
        classes += BODY
    if route.body_field is not None:
        synthetic.append(problems.BODY_UNPARSABLE)
    if params or route.body_field is not None:
        synthetic.append(problems.VALIDATION)
    if bearer and method != "GET":
        classes += WRITE
    if route.tags and "publication" in route.tags:
        classes += PUBLICATION
    out: dict[int, list[tuple[str, str]]] = {}
    for status, slug, title in [*_rows(classes), *synthetic]:
        if (slug, title) not in out.setdefault(status, []):
            out[status].append((slug, title))
    return out


def _rows(classes: Iterable[type[Exception]]) -> Iterator[tuple[int, str, str]]:
    wanted = set(classes)
    for cls, status, slug, title in problems.PROBLEMS:
        if any(issubclass(w, cls) or issubclass(cls, w) for w in wanted):
            yield status, slug, title


def _roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles the operation's role gate admits; None for an operation without a bearer token."""
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleGate):
            return frozenset(str(role) for role in dep.call.allowed)
        if dep.call is authenticated:
            return frozenset()
        found = _roles(dep)
        if found is not None:
            return found
    return None


def _mark_repertoire(node: Any) -> None:
    """A field marked ``x-koshin-repertoire`` takes the one RegistryText pattern, its own lengths kept."""
    if isinstance(node, dict):
        if node.pop("x-koshin-repertoire", None):
            node["allOf"] = [{"$ref": "#/components/schemas/RegistryText"}]
        for value in node.values():
            _mark_repertoire(value)
    elif isinstance(node, list):
        for value in node:
            _mark_repertoire(value)
