"""A live koshin server for relying-party tests: uvicorn on a real TCP port in a background thread.

The listening socket is bound before the runtime is built, so the CA hierarchy and every certificate carry
the server's own base URL in their CRL distribution points and AIA (OCSP, caIssuers), and there is no race for
the port between picking it and serving on it.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.api_world import COUNTER_EVIDENCE

HEALTH_TIMEOUT = 15.0  # seconds: start-up runs the app's lifespan (init_hierarchy is a no-op by then)


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port and listening, handed to uvicorn as is."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class LiveServer:
    """``uvicorn.Server`` serving ``app`` on ``sock`` from a daemon thread; ``stop`` ends it cleanly."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="koshin-live", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last: str = "no answer"
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the live server's thread died during start-up (see the captured log)")
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the live server did not become healthy within {HEALTH_TIMEOUT}s: {last}")

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class LiveClient:
    """httpx against the live server, with one bearer token per role."""

    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, who: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def get(self, path: str, who: str) -> httpx.Response:
        return self.http.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def issue(self, csr_pem: str, certificate_type: str, municipality: str) -> dict[str, Any]:
        """A new resident, a counter proofing event and a certificate on it, all over HTTP."""
        card = f"C{uuid.uuid4().hex[:12].upper()}"
        resident = {
            "resident_number": f"R-{uuid.uuid4().hex[:12]}",
            "name": "宮崎 花子",
            "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": municipality,
            "date_of_birth": "1988-04-12",
            "sex": "female",
            "cards": [{"number": card, "issued_on": "2021-06-01"}],
        }
        created = self.post("/v1/residents", "municipal_staff", resident)
        assert created.status_code == 201, created.text
        number = resident["resident_number"]
        event = self.post("/v1/proofing-events", "municipal_staff", {"resident_number": number,
                          "operation": "cert_issue", "channel": "counter_in_person",
                          "evidence": COUNTER_EVIDENCE})  # fmt: skip
        assert event.status_code == 201, event.text
        body = {"csr_pem": csr_pem, "resident_number": number, "certificate_type": certificate_type,
                "proofing_event_id": event.json()["id"], "card_number": card}  # fmt: skip
        issued = self.post("/v1/certificates", "municipal_staff", body)
        assert issued.status_code == 201, issued.text
        out: dict[str, Any] = issued.json()
        assert out["status"] == "issued" and out["certificate_pem"], out
        return out

    def revoke(self, serial: str, reason: str = "keyCompromise") -> dict[str, Any]:
        body = {"reason": reason, "evidence": ["photo_id_document"]}  # the holder asks at the counter (REVOKE-COUNTER)
        response = self.post(f"/v1/certificates/{serial}/revoke", "municipal_staff", body)
        assert response.status_code == 200, response.text
        out: dict[str, Any] = response.json()
        assert out["status"] == "revoked" and out["revocation_reason"] == reason, out
        return out


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
