"""CMP (RFC 4210 / RFC 9480) over HTTP (RFC 6712): thin routes over the protocol package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
