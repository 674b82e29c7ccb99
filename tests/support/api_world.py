"""The REST service in-process over the session SoftHSM token, on SQLite and on PostgreSQL.

One runtime (CA hierarchy + database) per backend, built once for the session; an actor per role; a small registry:
Miyazaki (452017, post-office delegation on), Matsuyama (382019, off).
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench.pgserver import PgServer
from hsm import KeyAlgorithm, TokenSession
from service.api.app import create_app
from service.policy.model import Role
from service.provisioning import provision
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from tests.conftest import SoftHsm
from tests.support.memo import Memo
from tests.support.pki_world import token_csr

MIYAZAKI, MATSUYAMA = "452017", "382019"
REGISTRY: dict[str, Any] = {
    "municipalities": [
        {"code": MIYAZAKI, "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True},
        {"code": MATSUYAMA, "name": "松山市", "prefecture": "愛媛県", "post_office_delegation": False},
    ],
    "residents": [],
}
COUNTER_EVIDENCE = ["photo_id_document", "resident_register_match"]


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]  # role (or alias) -> bearer token
    backend: str
    csr_pem: str

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def post(self, path: str, who: str, body: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.post(path, json=body, headers=self.as_(who))
        return response

    def get(self, path: str, who: str) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=self.as_(who))
        return response

    def new_resident(self, municipality: str = MIYAZAKI, **fields: Any) -> str:
        number = f"R-{uuid.uuid4().hex[:12]}"
        body = {
            "resident_number": number,
            "name": "宮崎 花子",
            "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": municipality,
            "date_of_birth": "1988-04-12",
            "sex": "female",
            "cards": [{"number": f"C{uuid.uuid4().hex[:12].upper()}", "issued_on": "2021-06-01"}],
            **fields,
        }
        clerk = "matsuyama_staff" if municipality == MATSUYAMA else "municipal_staff"
        response = self.post("/v1/residents", clerk, body)
        assert response.status_code == 201, response.text
        return number

    def card_of(self, resident: str) -> str:
        return str(self.get(f"/v1/residents/{resident}", "municipal_staff").json()["cards"][0]["number"])

    def proof(self, resident: str, who: str = "municipal_staff", **fields: Any) -> httpx.Response:
        body = {"resident_number": resident, "operation": "cert_issue", "channel": "counter_in_person",
                "evidence": COUNTER_EVIDENCE, **fields}  # fmt: skip
        return self.post("/v1/proofing-events", who, body)

    def issue(self, resident: str, certificate_type: str = "signature", **fields: Any) -> httpx.Response:
        event = self.proof(resident)
        assert event.status_code == 201, event.text
        body = {"csr_pem": self.csr_pem, "resident_number": resident, "certificate_type": certificate_type,
                "proofing_event_id": event.json()["id"], "card_number": self.card_of(resident), **fields}  # fmt: skip
        return self.post("/v1/certificates", "municipal_staff", body)


def make_runtime(softhsm: SoftHsm, home: Path, database_url: str, prefix: str, **overrides: Any) -> Runtime:
    settings = Settings(
        home=home,
        pkcs11_module=softhsm.module,
        token_label=softhsm.token_label,
        token_pin=SecretStr(softhsm.pin),
        database_url=database_url,
        ca_key_algorithm=KeyAlgorithm.P256,
        key_label_prefix=prefix,
        **overrides,
    )
    runtime = open_runtime(settings)
    provision(runtime)
    return runtime


def serve_api(request: pytest.FixtureRequest, token: TokenSession, tmp_path_factory: pytest.TempPathFactory,
              name: str) -> Api:  # fmt: skip
    """A runtime of its own (keys labelled ``<name>-<backend>-``) on ``request.param``'s backend, served
    in-process, with the registry imported and an actor per role; built once per session (tests.support.memo)."""
    backend: str = request.param
    memo: Memo = request.getfixturevalue("memo" if backend == "sqlite" else "pg_memo")

    def make(stack: ExitStack) -> Api:
        return _build_api(stack, request, token, tmp_path_factory, name, backend)

    return memo.get((name, backend), make)


def _build_api(stack: ExitStack, request: pytest.FixtureRequest, token: TokenSession,
               tmp_path_factory: pytest.TempPathFactory, name: str, backend: str) -> Api:  # fmt: skip
    softhsm: SoftHsm = request.getfixturevalue("softhsm")
    home = tmp_path_factory.mktemp(f"{name}-{backend}")
    if backend == "sqlite":
        url = f"sqlite:///{home / 'koshin.db'}"
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create_database(f"{name}_{uuid.uuid4().hex[:8]}")
    # Every test shares the one TestClient address: the hostile suite keeps the documented lockout, the
    # others raise the per-source limit so the garbage tokens of the role matrix lock nothing.
    limit = {} if name == "hostile" else {"auth_source_limit": 1_000_000}
    runtime = make_runtime(softhsm, home, url, f"{name}-{backend}-", **limit)
    stack.callback(runtime.close)
    app = create_app(runtime.settings, runtime=runtime)
    csr = token_csr(token, f"{name}-{backend}-holder-p256", KeyAlgorithm.P256).public_bytes(Encoding.PEM).decode()
    client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
    _, operator_token = runtime.repo.add_actor("operator", "ca_operator", None)
    client.headers.update({"Authorization": f"Bearer {operator_token}"})
    response = client.post("/v1/registry/import", json=REGISTRY)
    assert response.status_code == 200, response.text
    client.headers.pop("Authorization")
    tokens = {"ca_operator": operator_token}
    for role in Role:
        if role is Role.CA_OPERATOR:
            continue
        municipality: str | None = MATSUYAMA if role is Role.OTHER_MUNICIPALITY_STAFF else MIYAZAKI
        if role is Role.AUDITOR:
            municipality = None
        tokens[role.value] = runtime.repo.add_actor(f"{role.value}-1", role.value, municipality)[1]
    tokens["matsuyama_staff"] = runtime.repo.add_actor("matsuyama-staff", "municipal_staff", MATSUYAMA)[1]
    return Api(client, runtime, tokens, backend, csr)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, token: TokenSession, tmp_path_factory: pytest.TempPathFactory) -> Api:
    return serve_api(request, token, tmp_path_factory, "api")


def load_pem(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


# the live server of test_live.py, registered here so the test module only uses it
from tests.support.live_fixture import live, station  # noqa: E402, F401
