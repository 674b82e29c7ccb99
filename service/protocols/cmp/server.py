"""One CMP exchange: decode, authenticate, run the operation, answer with a protected PKIMessage.

Every answer is a PKIMessage; a refusal is an ``error`` body (PKIStatusInfo rejection + failInfo). An answer is
protected like its request once the request's protection verified (MAC with the same secret, or the CMP
responder's signature); before that, and for unprotected requests, it is signed by the CMP responder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ca import errors as ca_errors
from ca.errors import UnknownReason, ValidityError
from hsm.errors import HsmError
from service import errors as svc
from service.protocols.cmp import messages, operations, transactions
from service.protocols.cmp.authentication import Requester, authenticate, signed_by_responder
from service.protocols.cmp.crmf import old_cert_serial
from service.protocols.cmp.errors import CmpRejected
from service.protocols.cmp.messages import Protector, Sender
from service.runtime import Runtime

log = logging.getLogger("koshin.cmp")
HOLDER_PROFILES = ("signature", "user-authentication")  # the path segment: profile and issuing CA
Operation = Callable[[Runtime, str, Any, Requester], operations.Reply]
OPERATIONS: dict[str, Operation] = {
    "ir": operations.initial_request,
    "kur": operations.key_update,
    "rr": operations.revocation,
    "certConf": operations.certificate_confirmation,
}
# service and CA refusals -> PKIFailureInfo. The first matching row wins.
FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (svc.EnrollmentSecretInvalid, "badMessageCheck"),
    (svc.PolicyDenied, "notAuthorized"),
    (svc.ProofingEventUnusable, "notAuthorized"),
    (svc.RevocationRefused, "certRevoked"),
    (svc.CertificateNotFound, "badCertId"),
    (svc.NotFound, "badRequest"),
    (ca_errors.CsrInvalid, "badCertTemplate"),
    (ca_errors.ProfileViolation, "badCertTemplate"),
    (ca_errors.LintFailed, "badCertTemplate"),
    (ValidityError, "badCertTemplate"),
    (UnknownReason, "badRequest"),
    (ca_errors.CaNotInitialised, "systemUnavail"),
    (HsmError, "systemUnavail"),
)


def _signer_serial(rt: Runtime, kind: str, message: Any) -> int | None:
    if kind == "rr":
        return operations.revocation_serial(message)
    if kind == "kur":
        return old_cert_serial(message["body"]["kur"])
    if kind == "certConf":
        found = transactions.find(rt.repo, messages.transaction_id(message))
        return int(found.sender, 16) if found is not None and found.kind == "kur" else None
    return None


def _as_rejection(exc: Exception) -> CmpRejected:
    if isinstance(exc, CmpRejected):
        return exc
    for cls, fail_info in FAILURES:
        if isinstance(exc, cls):
            return CmpRejected(fail_info, str(exc) if not isinstance(exc, HsmError) else "the token is unavailable")
    log.exception("CMP request failed", exc_info=exc)
    return CmpRejected("systemFailure", "unexpected error; see the server log")


def handle(rt: Runtime, profile: str, der: bytes) -> bytes:
    """Answer one CMP request for the certificate profile ``profile`` (the path segment)."""
    if profile not in HOLDER_PROFILES:
        return _error(rt, None, None, None, CmpRejected("badRequest", f"no CMP certificate profile {profile!r}"))
    issuer = rt.profiles.profile(profile).issuing_ca
    request: Any = None
    protector: Protector | None = None
    try:
        request = messages.decode(der)
        kind = messages.body_kind(request)
        header = request["header"]
        if kind == "genm" and not header["protectionAlg"].isValue:
            return _answer(rt, issuer, request, operations.general(rt, profile, request, None), None)
        if kind not in OPERATIONS and kind != "genm":
            raise CmpRejected("badRequest", f"{kind} is not supported (ir, kur, rr, certConf, genm are)")
        requester = authenticate(rt, request, issuer, _signer_serial(rt, kind, request))
        protector = requester.protector
        reply = (operations.general if kind == "genm" else OPERATIONS[kind])(rt, profile, request, requester)
        return _answer(rt, issuer, request, reply, protector)
    except Exception as exc:
        return _error(rt, issuer, request, protector, _as_rejection(exc))


def _answer(rt: Runtime, issuer: str, request: Any, reply: operations.Reply, protector: Protector | None) -> bytes:
    signer = signed_by_responder(rt, issuer)
    protector = protector or signer
    sender = Sender(signer.certificate.subject.public_bytes())
    return messages.response(request, reply.body_name, reply.body, sender, protector,
                             implicit_confirm=reply.implicit_confirm, nonce=reply.nonce)  # fmt: skip


def _error(rt: Runtime, issuer: str | None, request: Any, protector: Protector | None, failure: CmpRejected) -> bytes:
    log.info("CMP request refused: %s", failure)
    sender: Sender | None = None  # the empty Name when no responder is known
    if issuer is not None:
        try:
            signer = signed_by_responder(rt, issuer)
            sender, protector = Sender(signer.certificate.subject.public_bytes()), protector or signer
        except Exception:
            log.exception("CMP responder unavailable; the error is sent unprotected")
    return messages.response(request, "error", messages.error_body(failure), sender, protector)
