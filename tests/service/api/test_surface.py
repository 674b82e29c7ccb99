"""The API's surface without a token or a database: routing, schemas, the body limit and the problem format,
with the runtime replaced through FastAPI's dependency override (the app's lifespan, which provisions the
token, never runs). Every case here must be answered before a flow would touch the token or the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.deps import get_runtime
from service.db.registry_models import Actor
from service.settings import Settings

PROBLEM = "application/problem+json"


class _Repo:
    """Knows every token as an actor of the role it names; refuses to be asked anything else."""

    def actor_by_token(self, token: str) -> Actor:
        return Actor(id=1, name=f"fake-{token}", role=token, municipality_code="452017", token_sha256="",
                     created_at=datetime.now(UTC))  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a request reached the store ({name}) where it should have been refused first")


@dataclass
class _Runtime:
    settings: Settings
    repo: _Repo = field(default_factory=_Repo)
    auth_locks: dict[str, datetime] = field(default_factory=dict)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    settings = Settings(home=tmp_path_factory.mktemp("surface"), max_request_bytes=4096)
    app = create_app(settings)
    app.dependency_overrides[get_runtime] = lambda: _Runtime(settings)
    return TestClient(app, raise_server_exceptions=False)  # not entered: no lifespan, no token


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status
    return body


def _resident(**fields: Any) -> dict[str, Any]:
    return {"resident_number": "R-0001", "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": "452017", "date_of_birth": "1988-04-12", "sex": "female", **fields}  # fmt: skip


@pytest.mark.parametrize(("method", "path", "status", "slug"), [
    ("GET", "/v1/nothing-here", 404, "not-found"),
    ("DELETE", "/v1/residents/R-0001", 405, "method-not-allowed"),
    ("PUT", "/v1/certificates", 405, "method-not-allowed"),
])  # fmt: skip
def test_unknown_routes_and_methods(client: TestClient, method: str, path: str, status: int, slug: str) -> None:
    _problem(client.request(method, path), status, slug)


def test_no_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/residents/R-0001")
    _problem(response, 401, "authentication-required")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_role_the_endpoint_does_not_admit_is_403(client: TestClient) -> None:
    response = client.post("/v1/registry/import", json={"municipalities": [], "residents": []},
                           headers={"Authorization": "Bearer kiosk"})  # fmt: skip
    _problem(response, 403, "role-forbidden")


TEXT = [("nul", "宮崎\x00花子", "U+0000"), ("rtl", "宮崎\u202e花子", "U+202E"), ("emoji", "宮崎😀", "U+1F600"),
        ("dn", "A,CN=Evil", "U+002C"), ("bom", "\ufeff宮崎", "U+FEFF")]  # fmt: skip


@pytest.mark.parametrize(("case", "value", "code_point"), TEXT, ids=[t[0] for t in TEXT])
@pytest.mark.parametrize("field_name", ["name", "address"])
def test_registry_text_is_refused_before_any_flow(
    client: TestClient, case: str, value: str, code_point: str, field_name: str
) -> None:
    content = json.dumps(_resident(**{field_name: value})).encode()
    headers = {"Authorization": "Bearer municipal_staff", "content-type": "application/json"}
    response = client.post("/v1/residents", content=content, headers=headers)
    (error,) = _problem(response, 422, "invalid-request")["errors"]
    assert error["loc"][-1] == field_name and code_point in error["msg"]


@pytest.mark.parametrize("evidence", ["card_sign_certificate", "derived_certificate", "device_generated_key"])
def test_verified_evidence_cannot_be_asserted(client: TestClient, evidence: str) -> None:
    body = {"resident_number": "R-0001", "operation": "cert_issue", "channel": "counter_in_person",
            "evidence": ["photo_id_document", evidence]}  # fmt: skip
    response = client.post("/v1/proofing-events", json=body, headers={"Authorization": "Bearer municipal_staff"})
    assert "cannot be asserted" in json.dumps(_problem(response, 422, "invalid-request")["errors"])


@pytest.mark.parametrize(("body", "field_name"), [
    ({"reason": "keyCompromise", "channel": "telepathy"}, "channel"),
    ({"reason": "becauseISaidSo"}, "reason"),
    ({"reason": "keyCompromise", "evidence": ["device_generated_key"]}, "evidence"),
    ({"reason": "keyCompromise", "admin": True}, "admin"),
])  # fmt: skip
def test_revocation_bodies_are_checked(client: TestClient, body: dict[str, Any], field_name: str) -> None:
    response = client.post("/v1/certificates/0abc/revoke", json=body, headers={"Authorization": "Bearer ca_operator"})
    errors = _problem(response, 422, "invalid-request")["errors"]
    assert any(field_name in e["loc"] for e in errors), errors


def test_a_body_over_the_limit_is_413_declared_or_chunked(client: TestClient) -> None:
    headers = {"Authorization": "Bearer municipal_staff", "content-type": "application/json"}
    _problem(client.post("/v1/residents", content=b"x" * 5000, headers=headers), 413, "request-too-large")
    chunks = (b"x" * 1024 for _ in range(8))
    _problem(client.post("/v1/residents", content=chunks, headers=headers), 413, "request-too-large")


def test_the_openapi_document_names_the_object_routes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/v1/certificates/{serial}/revoke", "/v1/cards/{number}/lost", "/v1/phone-enrollments"} <= set(
        document["paths"]
    )
