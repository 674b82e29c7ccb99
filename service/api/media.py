"""How the routes that answer (or take) something other than JSON say so in the OpenAPI document."""

from __future__ import annotations

from typing import Any

BINARY = {"type": "string", "format": "binary"}


def answers(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose 200 carries ``media_type``."""
    return {200: {"description": description, "content": {media_type: {"schema": BINARY}}}}


def takes(media_type: str, description: str, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads its body itself (a DER or base64 protocol message).
    ``required=False``: an empty body is answered as the protocol answers a malformed one (an OCSP, CMP or
    time-stamp error message with HTTP 200), not refused by HTTP."""
    return {"requestBody": {"required": required, "description": description,
                            "content": {media_type: {"schema": BINARY}}}}  # fmt: skip
