"""`koshin serve --workers 2` on an embedded home, as the write-path tests drive it: started, killed with SIGKILL
(the whole process group: uvicorn's supervisor and its workers), restarted; with an operator and a counter
clerk, a resident, and direct reads of the database (SQLite or PostgreSQL) for what the API does not show."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.support.cli import KOSHIN, Cli

MIYAZAKI = "452017"
RESIDENT = "WP-0001"
EVIDENCE = ["photo_id_document", "resident_register_match"]
REGISTRY = {
    "municipalities": [{"code": MIYAZAKI, "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True}],
    "residents": [
        {"resident_number": RESIDENT, "name": "宮崎 一郎", "address": "宮崎県宮崎市橘通西一丁目1番1号",
         "municipality": MIYAZAKI, "date_of_birth": "1970-05-05", "sex": "male",
         "cards": [{"number": "WP000001", "issued_on": "2020-10-01"}]},
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def holder_csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.PEM)
        .decode()
    )


def _token(output: str) -> str:
    found = re.search(r"^token (\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


@dataclass
class Served:
    cli: Cli
    port: int
    database_url: str | None  # None: the home's SQLite file
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def embedded(cls, root: Path, database_url: str | None = None, **env: str) -> Served:
        """A server of its own on the embedded default under ``root``: P-256, a free port, ``database_url``
        (None: the home's SQLite file) and any other ``KOSHIN_*`` settings in ``env``."""
        cli, port = Cli(root / "home"), free_port()
        cli.env.update(KOSHIN_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", KOSHIN_CA_KEY_ALGORITHM="p256", **env)
        if database_url is not None:
            cli.env["KOSHIN_DATABASE_URL"] = database_url
        return cls(cli, port, database_url, root / "serve.log")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def setup(self) -> None:
        self.cli.ok("init")
        document = self.cli.home.parent / "registry.json"
        document.write_text(json.dumps(REGISTRY, ensure_ascii=False), encoding="utf-8")
        self.cli.ok("registry", "import", str(document))
        self.tokens["operator"] = _token(self.cli.ok("actors", "add", "--role", "ca_operator", "--name", "op"))
        self.tokens["staff"] = _token(
            self.cli.ok("actors", "add", "--role", "municipal_staff", "--municipality", MIYAZAKI, "--name", "clerk")
        )

    def start(self, **env: str) -> None:
        environment = {**self.cli.env, **env}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [KOSHIN, "serve", "--port", str(self.port), "--workers", "2"],
                env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"koshin serve did not become healthy: {self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to the server's whole process group: no lifespan shutdown, no last commit."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def client(self, who: str = "staff") -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def issue(self, http: httpx.Client, csr_pem: str) -> str:
        """A counter proofing, then a signature certificate on it; the serial."""
        body = {"resident_number": RESIDENT, "operation": "cert_issue", "channel": "counter_in_person",
                "evidence": EVIDENCE}  # fmt: skip
        event = http.post("/v1/proofing-events", json=body)
        assert event.status_code == 201, event.text
        issued = http.post("/v1/certificates", json={"csr_pem": csr_pem, "resident_number": RESIDENT,
                                                     "certificate_type": "signature",
                                                     "proofing_event_id": event.json()["id"]})  # fmt: skip
        assert issued.status_code == 201, issued.text
        return str(issued.json()["serial"])

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of the database (``?`` placeholders)."""
        if self.database_url is None:
            with contextlib.closing(sqlite3.connect(self.cli.home / "koshin.db")) as db:
                return [tuple(r) for r in db.execute(query, tuple(params))]
        dsn = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as db:
            return [tuple(r) for r in db.execute(query.replace("?", "%s"), tuple(params)).fetchall()]
