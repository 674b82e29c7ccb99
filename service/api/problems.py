"""The one place that turns exceptions into RFC 9457 problem documents (application/problem+json).

Anything not in the table is a 500 with a correlation id in the body and the traceback in the server log,
never in the response.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ca import errors as ca_errors
from ca.errors import UnknownReason, ValidityError
from hsm import errors as hsm_errors
from service import errors as svc
from service.api.observe import route_template
from service.observability.logs import correlation_id
from service.observability.metrics import PROBLEMS as PROBLEMS_SENT
from service.policy.errors import PolicyError

log = logging.getLogger("koshin.api")
MEDIA_TYPE = "application/problem+json"

# exception class -> (HTTP status, type slug, title). The first matching row (by isinstance) wins.
PROBLEMS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (svc.AuthenticationRequired, 401, "authentication-required", "Authentication required"),
    (svc.EnrollmentSecretInvalid, 401, "enrollment-secret-invalid", "Unknown proofing event or wrong one-time secret"),
    (svc.TlsRequired, 403, "tls-required", "This endpoint is served over TLS only"),
    (svc.RoleForbidden, 403, "role-forbidden", "Role may not call this endpoint"),
    (svc.PolicyDenied, 403, "policy-denied", "Refused by the assurance-level policy"),
    (svc.InputRefused, 400, "invalid-input", "Input refused"),
    (svc.RequestTooLarge, 413, "request-too-large", "Request body too large"),
    (svc.InvalidSerial, 400, "invalid-serial", "Invalid serial number"),
    (svc.OutsideJurisdiction, 403, "outside-jurisdiction", "Outside the actor's municipality"),
    (svc.NotFound, 404, "not-found", "No such object"),
    (svc.CertificateNotFound, 404, "certificate-not-found", "No such certificate"),
    (svc.ProofingEventNotYours, 403, "proofing-event-not-yours", "Proofing event recorded by another actor"),
    (svc.CardUnusable, 409, "card-unusable", "Card is not active"),
    (svc.RegistryConflict, 409, "registry-conflict", "Conflicts with the registry record"),
    (svc.AuthenticationLocked, 429, "authentication-locked", "Too many failed authentications"),
    (svc.ProofingEventUnusable, 409, "proofing-event-unusable", "Proofing event cannot be used"),
    (svc.RevocationRefused, 409, "revocation-refused", "Certificate cannot be revoked"),
    (svc.ConfigurationError, 503, "configuration", "Service misconfigured"),
    (svc.CrlUnavailable, 503, "crl-unavailable", "No CRL published yet"),
    (svc.IssuanceInterrupted, 503, "issuance-interrupted", "Issuance interrupted; nothing was delivered"),
    (ca_errors.CsrInvalid, 400, "csr-invalid", "Certificate signing request refused"),
    (ca_errors.HolderInvalid, 400, "holder-invalid", "Holder record invalid"),
    (ca_errors.ProfileNotFound, 400, "unknown-profile", "Unknown certificate profile"),
    (ca_errors.ProfileViolation, 422, "profile-violation", "Request violates the certificate profile"),
    (ca_errors.LintFailed, 422, "lint-failed", "Pre-issuance lint refused the certificate"),
    (ValidityError, 422, "validity", "No valid certificate lifetime"),
    (UnknownReason, 400, "unknown-reason", "Unknown revocation reason"),
    (ca_errors.SerialCollision, 409, "serial-collision", "Serial number collision"),
    (ca_errors.IssuanceRefused, 409, "issuance-refused", "Issuance refused"),
    (ca_errors.CaNotInitialised, 503, "ca-not-initialised", "CA hierarchy not initialised"),
    (PolicyError, 503, "policy-configuration", "Policy regime unusable"),
    (hsm_errors.HsmError, 503, "token-unavailable", "Token unavailable"),
)

# The problems that come from the framework rather than an exception of ours (the handlers below send them).
VALIDATION = (422, "invalid-request", "Request does not match the schema")
BODY_UNPARSABLE = (400, "bad-request", "There was an error parsing the body")


def problem(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    PROBLEMS_SENT.labels(slug, str(status)).inc()
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra}
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="koshin"')
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers or None)


def _extra(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, svc.PolicyDenied):
        return {"rule_id": exc.rule_id, "reason": exc.reason, "regime": exc.regime}
    if isinstance(exc, ca_errors.LintFailed):
        return {"findings": exc.findings}
    return {}


def _challenge(exc: BaseException) -> dict[str, str]:
    """EST clients present the one-time enrollment secret with HTTP Basic (RFC 7030 3.2.3), not a bearer token."""
    if isinstance(exc, svc.EnrollmentSecretInvalid):
        return {"WWW-Authenticate": 'Basic realm="koshin EST", charset="UTF-8"'}
    if isinstance(exc, svc.AuthenticationLocked):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def _detail(exc: BaseException) -> str:
    if isinstance(exc, hsm_errors.HsmError):
        return "the token refused or could not be reached; see the server log"
    return str(exc)


def problem_document(exc: Exception) -> dict[str, Any] | None:
    """The problem document (status included) the table gives ``exc``; None for an error it does not map. A
    batch reports each failed item with this, the same document the single request would have answered."""
    for cls, status, slug, title in PROBLEMS:
        if isinstance(exc, cls):
            return {"type": f"/problems/{slug}", "title": title, "status": status, "detail": _detail(exc),
                    **_extra(exc)}  # fmt: skip
    return None


async def _mapped(request: Request, exc: Exception) -> JSONResponse:
    for cls, status, slug, title in PROBLEMS:
        if isinstance(exc, cls):
            if status >= 500:
                log.error("%s on %s %s: %s", slug, request.method, route_template(request.scope), exc)
            return problem(status, slug, title, _detail(exc), headers=_challenge(exc), **_extra(exc))
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    correlation = correlation_id() or str(uuid.uuid4())
    log.exception("unhandled error %s on %s %s", correlation, request.method, route_template(request.scope),
                  exc_info=exc)  # fmt: skip
    return problem(
        500, "internal", "Internal error", "unexpected error; quote the correlation id", correlation_id=correlation
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class only
    errors = [{"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))} for err in exc.errors()]
    return problem(*VALIDATION, "see errors", errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this class only
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
        headers["Allow"] = ", ".join(_allowed(request))
    return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=headers)


def _allowed(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        if route.path_format and compile_path(route.path_format)[0].match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for cls in {row[0] for row in PROBLEMS}:
        app.add_exception_handler(cls, _mapped)
    app.add_exception_handler(Exception, _unexpected)
