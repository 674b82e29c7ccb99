"""Who is on the other end: the peer address of each request, for the failed-authentication count
(service/flows/lockout.py). None behind a TLS terminator, whose address every request would share."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.flows.lockout import request_source


class PeerSource:
    def __init__(self, app: ASGIApp, behind_terminator: bool) -> None:
        self.app, self.behind_terminator = app, behind_terminator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        host = client[0] if client and not self.behind_terminator else None
        token = request_source.set(host)
        try:
            await self.app(scope, receive, send)
        finally:
            request_source.reset(token)
