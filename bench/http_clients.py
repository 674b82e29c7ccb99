"""The client harness shared by ``rest`` and ``peer-cfssl``: client processes, each sending requests one after
another over a kept-alive HTTP connection, timing every request."""

from __future__ import annotations

import socket
import time
import uuid
from collections import deque
from typing import Any

import httpx

from bench.setup import MIYAZAKI
from bench.workers import Operation

COUNTER_EVIDENCE = ["photo_id_document", "resident_register_match"]
# httpx writes a request's head and body separately; with Nagle on, the body waits for the server's delayed ACK
# (about 40 ms on Linux) whenever the server is slower to answer than that ACK timer. Clients that care set
# TCP_NODELAY, and so does this harness, for koshin and cfssl alike.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, timeout=60.0, headers=headers, transport=transport)


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
        )
    return response.json()


def koshin_client(params: dict[str, Any], index: int) -> Operation:
    """POST /v1/certificates on proofing events created beforehand (untimed), one resident per client; with
    ``base_urls`` (several nodes) client ``index`` talks to node ``index % len(base_urls)``."""
    urls = params.get("base_urls") or [params["base_url"]]
    http = http_client(urls[index % len(urls)], {"Authorization": f"Bearer {params['token']}"})
    card = f"C{uuid.uuid4().hex[:12].upper()}"
    number = f"R-{uuid.uuid4().hex[:12]}"
    _checked(http.post("/v1/residents", json={
        "resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
        "municipality": MIYAZAKI, "date_of_birth": "1988-04-12", "sex": "female",
        "cards": [{"number": card, "issued_on": "2021-06-01"}]}))  # fmt: skip
    events: deque[str] = deque()
    for _ in range(params["requests"]):
        event = _checked(http.post("/v1/proofing-events", json={"resident_number": number, "operation": "cert_issue",
                                   "channel": "counter_in_person", "evidence": COUNTER_EVIDENCE}))  # fmt: skip
        events.append(event["id"])
    csr_pem = params["csr_pem"]

    def op() -> float:
        body = {"csr_pem": csr_pem, "resident_number": number, "certificate_type": "signature",
                "proofing_event_id": events.popleft(), "card_number": card}  # fmt: skip
        start = time.perf_counter()
        response = http.post("/v1/certificates", json=body)
        latency = time.perf_counter() - start
        _checked(response)
        return latency

    return Operation(op, http.close)


def cfssl_client(params: dict[str, Any], index: int) -> Operation:
    """POST /api/v1/cfssl/sign with a CSR, as cfssl's own clients do."""
    http = http_client(params["base_url"])
    body = {"certificate_request": params["csr_pem"]}

    def op() -> float:
        start = time.perf_counter()
        response = http.post("/api/v1/cfssl/sign", json=body)
        latency = time.perf_counter() - start
        answer = _checked(response)
        if not answer.get("success"):
            raise RuntimeError(f"cfssl refused: {answer.get('errors')}")
        return latency

    return Operation(op, http.close)
