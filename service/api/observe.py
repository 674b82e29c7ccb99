"""Every HTTP request observed once, as plain ASGI middleware (outermost): a correlation id bound for the logs
and echoed in ``X-Request-ID``, the latency histogram by route template, method and status, and one JSON access
line naming the route template (never the raw path: ``/v1/residents/{number}`` holds personal data)."""

from __future__ import annotations

import logging
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.logs import CORRELATION_HEADER, bind_correlation
from service.observability.metrics import REQUEST_SECONDS

access = logging.getLogger("koshin.access")
UNMATCHED = "unmatched"  # no route: one label value for every 404 of an unknown path, whatever it was
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers", [])).get(CORRELATION_HEADER.encode())
        correlation = bind_correlation(offered.decode("latin-1") if offered is not None else None)
        started, status = perf_counter(), 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != CORRELATION_HEADER.encode()]
                message["headers"] = [*headers, (CORRELATION_HEADER.encode(), correlation.encode())]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = perf_counter() - started
            route, method = route_template(scope), str(scope.get("method", ""))
            method = method if method in METHODS else "other"  # a label takes no value a client invents
            REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)
            access.info("request", extra={"route": route, "method": method, "status": status,
                                          "duration_ms": round(seconds * 1000, 3)})  # fmt: skip
