"""Connections accepted on a socket bound the way uvicorn's --workers binds it (proto 0) get TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket

from service.api.nodelay import set_nodelay


def test_a_connection_on_a_proto_zero_listener_gets_nodelay() -> None:
    options: list[tuple[int, int]] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            set_nodelay(transport)
            options.append((before, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            transport.close()

    async def scenario() -> None:
        listener = socket.socket(family=socket.AF_INET)  # what uvicorn's Config.bind_socket does: proto 0
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(200):
            if options:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(scenario())
    before, after = options[0]
    assert before == 0  # asyncio left Nagle on: the ~40 ms delayed-ACK stall the protocol removes
    assert after != 0
