"""Request-body size limit as plain ASGI middleware: refuses early on Content-Length, counts otherwise (a
chunked body), and answers 413 whatever the route made of the interrupted read."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BATCH_PATHS = frozenset({"/v1/card-issuances/batch"})
BATCH_FACTOR = 64  # a batch route takes this many times the limit (a batch is up to 100 card requests)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes * (BATCH_FACTOR if scope.get("path") in BATCH_PATHS else 1)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                over = True
                raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # The route may turn the interrupted read into its own answer (FastAPI: 400 "error parsing the
            # body"); once the body went over the limit, only the 413 goes out.
            nonlocal started
            if not over:
                started = True
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counted, guarded)
        if over and not started:
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body: dict[str, Any] = {
            "type": "/problems/request-too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"request bodies are limited to {limit} bytes",
        }
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    pass
