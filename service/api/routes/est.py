"""EST (RFC 7030, with the RFC 8951 clarifications): thin routes over service/protocols/est.py.

Bodies travel base64-encoded DER (``Content-Transfer-Encoding: base64``). ``/.well-known/est/{label}/...``
takes a holder profile as CA label; the unlabelled paths mean ``user-authentication``. These routes carry no
actor token: ``simpleenroll`` is authenticated with HTTP Basic (proofing event id : one-time enrollment
secret), ``cacerts`` and ``csrattrs`` are public as the RFC allows. Errors are the usual problem documents;
a missing or wrong secret is 401 with ``WWW-Authenticate: Basic``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ca.errors import CsrInvalid
from service.api.deps import RuntimeDep
from service.api.media import answers, takes
from service.errors import EnrollmentSecretInvalid, TlsRequired
from service.flows.enrollment import burn_exposed
from service.protocols import est

router = APIRouter(prefix="/.well-known/est", tags=["est"])

PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS = "application/csrattrs"
PKCS10 = "application/pkcs10"
_CERTS = "the root and the issuing CA (base64 certs-only PKCS#7)"
_ATTRS = "base64 DER CsrAttrs"
_ISSUED = "the new certificate (base64 certs-only PKCS#7)"
_CSR = "a base64 DER PKCS#10 request (Content-Transfer-Encoding: base64)"
_BASIC_HELP = "EST needs HTTP Basic auth: user = proofing event id, password = its one-time enrollment secret"


def _base64_response(der: bytes, media_type: str) -> Response:
    body = base64.encodebytes(der)  # 76-column lines, as MIME's base64 transfer encoding has them
    return Response(body, media_type=media_type, headers={"Content-Transfer-Encoding": "base64"})


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise EnrollmentSecretInvalid(_BASIC_HELP)
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise EnrollmentSecretInvalid(_BASIC_HELP) from exc
    if not sep or not user or not password:
        raise EnrollmentSecretInvalid(_BASIC_HELP)
    return user, password


def _csr_der(body: bytes) -> bytes:
    """The request body: base64 DER PKCS#10 (line breaks allowed)."""
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CsrInvalid("the body must be a base64-encoded DER PKCS#10 request (application/pkcs10)") from exc
    if not der:
        raise CsrInvalid("empty request: send a base64-encoded DER PKCS#10 request (application/pkcs10)")
    return der


def _cacerts(rt: RuntimeDep, label: str | None) -> Response:
    return _base64_response(est.ca_certificates(rt, est.profile_of(rt, label)), PKCS7_CERTS_ONLY)


def _csrattrs(rt: RuntimeDep, label: str | None) -> Response:
    return _base64_response(est.csr_attributes(rt, est.profile_of(rt, label)), CSRATTRS)


async def _simpleenroll(request: Request, rt: RuntimeDep, label: str | None) -> Response:
    if not request.headers.get("authorization"):  # no credentials: say which, before anything is sent in clear
        raise EnrollmentSecretInvalid(_BASIC_HELP)
    if not (rt.settings.behind_tls or request.url.scheme == "https"):  # RFC 7030 3.2.3: Basic auth only over TLS
        try:
            exposed = _basic_credentials(request)
        except EnrollmentSecretInvalid:
            exposed = None
        burned = exposed is not None and await run_in_threadpool(burn_exposed, rt, *exposed)
        raise TlsRequired(
            ("the proofing event was spent because its secret crossed plain HTTP; record a new one. " if burned else "")
            + "simpleenroll carries the one-time secret in HTTP Basic auth, so it is served over TLS only "
            "(koshin serve --tls, or KOSHIN_BEHIND_TLS=true behind a TLS terminator of your own); "
            "the secret just sent in clear should be treated as exposed"
        )
    profile = est.profile_of(rt, label)
    event_id, secret = _basic_credentials(request)
    csr_der = _csr_der(await request.body())
    issued = await run_in_threadpool(est.enroll, rt, profile, event_id, secret, csr_der)  # token and DB block
    return _base64_response(est.certs_only([issued.certificate]), PKCS7_CERTS_ONLY)


@router.get("/cacerts", response_class=Response, responses=answers(PKCS7_CERTS_ONLY, _CERTS))
def cacerts(rt: RuntimeDep) -> Response:
    """The root and the default CA (user-authentication) as a base64 certs-only PKCS#7."""
    return _cacerts(rt, None)


@router.get("/{label}/cacerts", response_class=Response, responses=answers(PKCS7_CERTS_ONLY, _CERTS))
def labelled_cacerts(label: str, rt: RuntimeDep) -> Response:
    """The root and the issuing CA of the labelled profile as a base64 certs-only PKCS#7."""
    return _cacerts(rt, label)


@router.get("/csrattrs", response_class=Response, responses=answers(CSRATTRS, _ATTRS))
def csrattrs(rt: RuntimeDep) -> Response:
    """What a CSR for the default label should carry: base64 DER CsrAttrs (key types, signature algorithms)."""
    return _csrattrs(rt, None)


@router.get("/{label}/csrattrs", response_class=Response, responses=answers(CSRATTRS, _ATTRS))
def labelled_csrattrs(label: str, rt: RuntimeDep) -> Response:
    return _csrattrs(rt, label)


@router.post(
    "/simpleenroll",
    response_class=Response,
    responses=answers(PKCS7_CERTS_ONLY, _ISSUED),
    openapi_extra=takes(PKCS10, _CSR),
)
async def simpleenroll(request: Request, rt: RuntimeDep) -> Response:
    """Issue a user-authentication certificate for a base64 DER PKCS#10 body; HTTP Basic with the one-time
    secret of a proofing event. The answer is a base64 certs-only PKCS#7 holding the new certificate."""
    return await _simpleenroll(request, rt, None)


@router.post(
    "/{label}/simpleenroll",
    response_class=Response,
    responses=answers(PKCS7_CERTS_ONLY, _ISSUED),
    openapi_extra=takes(PKCS10, _CSR),
)
async def labelled_simpleenroll(label: str, request: Request, rt: RuntimeDep) -> Response:
    """As ``/simpleenroll``, for the labelled profile (``signature`` or ``user-authentication``)."""
    return await _simpleenroll(request, rt, label)
