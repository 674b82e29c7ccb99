"""What relying parties fetch, without an actor token: CRLs, OCSP, CA certificates, time-stamps (RFC 5280, 6960,
3161)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ca.errors import RequestMalformed, RequestUnsupported
from ca.hierarchy import TSA_NAME
from ca.ocsp import OcspAnswer
from ca.tsa import MAX_REQUEST_OCTETS, failure_response
from service.api.convert import audit_out
from service.api.deps import RuntimeDep, require
from service.api.media import answers, takes
from service.api.schemas import AuditOut, ChainOut
from service.audit.verification import verify_installation
from service.db.registry_models import Actor
from service.errors import CrlUnavailable, NotFound
from service.observability.metrics import OCSP_RESPONSES
from service.policy.model import Role

router = APIRouter()
OCSP_MEDIA = "application/ocsp-response"
CDN_MAX_AGE = 60  # seconds: how long an edge cache may keep an answer (at most until its nextUpdate)
TSQ_MEDIA, TSR_MEDIA = "application/timestamp-query", "application/timestamp-reply"
Auditors = Annotated[Actor, Depends(require(Role.AUDITOR))]


def _ocsp_name(rt: RuntimeDep, ca: str) -> str:
    """The CA of an OCSP URL, checked against the process's responder (made at start-up from the CA records),
    so answering reads the database once, for the status, and nothing else."""
    if ca not in rt.ocsp.issuer_names:
        raise NotFound(f"no CA named {ca!r} (known: {', '.join(sorted(rt.ocsp.issuer_names))})")
    return ca


def _issuing_name(rt: RuntimeDep, ca: str, *, root_allowed: bool = False) -> str:
    names = {r.name for r in rt.ca_records("issuing")} | ({"root"} if root_allowed else set())
    if ca not in names:
        raise NotFound(f"no CA named {ca!r} (known: {', '.join(sorted(names))})")
    return ca


@router.get(
    "/crl/{ca}.crl",
    tags=["publication"],
    response_class=Response,
    responses=answers("application/pkix-crl", "the CA's complete CRL (DER)"),
)
def crl(ca: str, rt: RuntimeDep) -> Response:
    """The newest published complete CRL (DER). It is never signed here: the publisher signs one after
    revocations (coalesced) and before half its validity has passed."""
    stored = rt.repo.latest_crl(_issuing_name(rt, ca, root_allowed=True))
    if stored is None:
        raise CrlUnavailable(f"no CRL of {ca} has been published yet; it is published at start-up")
    return Response(stored.crl_der, media_type="application/pkix-crl")


@router.get(
    "/crl/{ca}/{shard}.crl",
    tags=["publication"],
    response_class=Response,
    responses=answers("application/pkix-crl", "one shard of the CA's partitioned CRL (DER)"),
)
def crl_shard(ca: str, shard: str, rt: RuntimeDep) -> Response:
    """The newest published CRL of one shard of a partitioned CA (DER): the CRL a certificate's distribution
    point names, its issuing distribution point naming this URL. Never signed here, as the complete CRL."""
    name = _issuing_name(rt, ca)
    shards = rt.profiles.hierarchy.crl_shards(name)
    if not shard.isdecimal() or not 0 <= int(shard) < shards:
        known = f"0 to {shards - 1}" if shards > 1 else "none: it publishes its complete CRL only"
        raise NotFound(f"{ca} has no CRL shard {shard!r} (shards: {known})")
    stored = rt.repo.latest_crl(name, int(shard))
    if stored is None:
        raise CrlUnavailable(f"no CRL of {ca} shard {shard} has been published yet; it is published at start-up")
    return Response(stored.crl_der, media_type="application/pkix-crl")


@router.get(
    "/ca/{ca}.cer",
    tags=["publication"],
    response_class=Response,
    responses=answers("application/pkix-cert", "the CA certificate (DER)"),
)
def ca_certificate(ca: str, rt: RuntimeDep) -> Response:
    """The root or an issuing CA certificate; ``/ca/tsa.cer`` is the time-stamp authority's certificate."""
    if ca == TSA_NAME and rt.ca_records("tsa"):
        return Response(rt.ca_record(TSA_NAME, "tsa").certificate_der, media_type="application/pkix-cert")
    name = _issuing_name(rt, ca, root_allowed=True)
    record = rt.ca_record(name, "root" if name == "root" else "issuing")
    return Response(record.certificate_der, media_type="application/pkix-cert")


@router.get(
    "/v1/ca/chain",
    tags=["publication"],
    response_class=Response,
    responses=answers("application/pem-certificate-chain", "every CA certificate (PEM)"),
)
def chain(rt: RuntimeDep) -> Response:
    pem = b"".join(cert.public_bytes(Encoding.PEM) for cert in rt.chain())
    return Response(pem, media_type="application/pem-certificate-chain")


@router.post(
    "/ocsp/{ca}",
    tags=["publication"],
    response_class=Response,
    responses=answers(OCSP_MEDIA, "an OCSP response (DER; an OCSP error status for a malformed request)"),
    openapi_extra=takes("application/ocsp-request", "a DER OCSPRequest", required=False),
)
async def ocsp_post(ca: str, request: Request, rt: RuntimeDep) -> Response:
    """RFC 6960 over HTTP POST (application/ocsp-request)."""
    name = _ocsp_name(rt, ca)
    answer = rt.ocsp.answer(await request.body(), issuer_name=name)
    OCSP_RESPONSES.labels(name, "cached" if answer.cached else "signed").inc()
    return Response(answer.der, media_type=OCSP_MEDIA)


@router.get(
    "/ocsp/{ca}/{encoded:path}",
    tags=["publication"],
    response_class=Response,
    responses=answers(OCSP_MEDIA, "an OCSP response (DER; an OCSP error status for a malformed request)"),
)
def ocsp_get(ca: str, encoded: str, rt: RuntimeDep) -> Response:
    """RFC 6960 appendix A GET: the base64 DER request in the path (standard base64 as the RFC says; the
    URL-safe alphabet some clients send is accepted too, and missing padding is tolerated)."""
    name = _ocsp_name(rt, ca)
    altchars = b"-_" if ("-" in encoded or "_" in encoded) else None
    try:
        der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=altchars, validate=False)
    except (binascii.Error, ValueError):
        der = b""
    answer = rt.ocsp.answer(der, issuer_name=name)
    OCSP_RESPONSES.labels(name, "cached" if answer.cached else "signed").inc()
    return Response(answer.der, media_type=OCSP_MEDIA, headers=_http_caching(answer))


def _http_caching(answer: OcspAnswer) -> dict[str, str]:
    """RFC 5019 section 6.2 for a CDN in front: a signed answer is cacheable until its nextUpdate, capped at
    CDN_MAX_AGE so an edge never serves a "good" much past a revocation; an unsigned error is not cached."""
    if answer.this_update is None or answer.next_update is None:
        return {"Cache-Control": "no-store"}
    left = int((answer.next_update - datetime.now(UTC)).total_seconds())
    return {
        "Cache-Control": f"max-age={max(0, min(CDN_MAX_AGE, left))}, public, no-transform, must-revalidate",
        "Last-Modified": format_datetime(answer.this_update, usegmt=True),
        "Expires": format_datetime(answer.next_update, usegmt=True),
        "ETag": f'"{hashlib.sha256(answer.der).hexdigest()[:32]}"',
    }


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` octets (read no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@router.post(
    "/tsa",
    tags=["publication"],
    response_class=Response,
    responses=answers(TSR_MEDIA, "a DER TimeStampResp (a rejection status for a refused request)"),
    openapi_extra=takes(TSQ_MEDIA, "a DER TimeStampReq", required=False),
)
async def time_stamp(request: Request, rt: RuntimeDep) -> Response:
    """RFC 3161 over HTTP (section 3.4): a DER TimeStampReq as ``application/timestamp-query`` in, a DER
    TimeStampResp out. A request the TSA refuses (hash other than SHA-256/384/512, another policy, a wrong
    media type, not DER) gets a TimeStampResp with status rejection and a failInfo, with HTTP 200."""
    authority = rt.tsa
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _capped_body(request, MAX_REQUEST_OCTETS)
    if media != TSQ_MEDIA:
        der = failure_response(RequestUnsupported(f"media type {media or 'none'!r} (expected {TSQ_MEDIA})"))
    elif body is None:
        der = failure_response(RequestMalformed(f"a request over {MAX_REQUEST_OCTETS} octets"))
    else:
        der = await run_in_threadpool(authority.respond, body)  # the token signs off the event loop
    return Response(der, media_type=TSR_MEDIA, headers={"Cache-Control": "no-store"})


@router.get("/v1/audit", response_model=list[AuditOut], tags=["audit"])
def audit_records(
    rt: RuntimeDep,
    actor: Auditors,
    after: Annotated[int, Query(ge=0, description="the last record number already read")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """The audit log in record-number order, ``limit`` records after number ``after`` (each with its place in
    the tree once integrated)."""
    return [audit_out(r) for r in rt.repo.audit_records(after, limit)]


@router.get("/v1/audit/verify", response_model=ChainOut, tags=["audit"])
def audit_verify(rt: RuntimeDep, actor: Auditors) -> ChainOut:
    """Recompute the audit log (record hashes, the Merkle tree) and check it against the checkpoints signed with
    the token's audit key, stored and in ``KOSHIN_HOME/audit/checkpoints.jsonl``; ``problem`` names the first
    thing that does not hold."""
    report = verify_installation(rt)
    return ChainOut(
        records=report.records,
        pending=report.pending,
        intact=report.intact,
        first_broken=report.first_broken,
        problem=report.problem,
        checkpoints=report.checkpoints,
        anchored_records=report.anchored,
    )
