"""EST (RFC 7030): thin routes over the protocol package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
