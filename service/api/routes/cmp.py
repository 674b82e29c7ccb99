"""CMP (RFC 4210 / RFC 9480) over HTTP (RFC 6712): thin routes over the protocol package.

``POST /.well-known/cmp/p/{profile}`` (RFC 9811-style path segment: ``signature`` or ``user-authentication``)
takes and returns ``application/pkixcmp``. Callers are authenticated by the CMP message protection, not by an
actor token; every answer, refusals included, is a PKIMessage (only an oversized body gets problem+json).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.api.deps import RuntimeDep
from service.api.media import answers, takes
from service.protocols.cmp.server import handle

router = APIRouter(tags=["CMP"])
MEDIA_TYPE = "application/pkixcmp"


@router.post(
    "/.well-known/cmp/p/{profile}",
    response_class=Response,
    responses=answers(MEDIA_TYPE, "a PKIMessage (a CMP error body on refusal)"),
    openapi_extra=takes(MEDIA_TYPE, "a DER PKIMessage: ir, kur, rr, certConf or genm", required=False),
)
async def cmp_exchange(profile: str, request: Request, rt: RuntimeDep) -> Response:
    """One CMP request/response: ir (MAC over a proofing event's one-time secret), kur and rr (signed with the
    certificate's key), certConf, genm (CA certificates)."""
    body = await request.body()
    answer = await run_in_threadpool(handle, rt, profile, body)
    return Response(content=answer, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
