"""Every endpoint declares which roles may call it (a ``RoleGate`` dependency); every role is tried on every one.

The route table is read from the running app, so a new route fails here until it is either gated and given a
sample request below, or deliberately listed as public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import update
from sqlmodel import Session, col

from service.api.deps import RoleGate
from service.db.registry_models import Actor
from service.policy.model import Role
from tests.support.api_world import COUNTER_EVIDENCE, Api

PROBLEM = "application/problem+json"
RouteKey = tuple[str, str]  # (method, path as declared)

# Reachable without an actor token: what relying parties fetch, the health probe, and FastAPI's own docs.
PUBLIC: frozenset[RouteKey] = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/metrics"),  # Prometheus scrape: counts and latencies by route template, no personal data
        ("GET", "/crl/{ca}.crl"),
        ("GET", "/crl/{ca}/{shard}.crl"),  # one shard of a partitioned CA (its certificates name it)
        ("GET", "/ca/{ca}.cer"),
        ("GET", "/v1/ca/chain"),
        ("POST", "/ocsp/{ca}"),
        ("GET", "/ocsp/{ca}/{encoded:path}"),
        ("POST", "/tsa"),  # RFC 3161 time-stamps (tests/service/protocols/test_tsa_live.py)
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        # EST (RFC 7030): no actor token. cacerts and csrattrs are public; simpleenroll is authenticated by
        # HTTP Basic with a proofing event's one-time enrollment secret (tests/service/protocols/test_est.py).
        ("GET", "/.well-known/est/cacerts"),
        ("GET", "/.well-known/est/{label}/cacerts"),
        ("GET", "/.well-known/est/csrattrs"),
        ("GET", "/.well-known/est/{label}/csrattrs"),
        ("POST", "/.well-known/est/simpleenroll"),
        ("POST", "/.well-known/est/{label}/simpleenroll"),
        # CMP (RFC 4210/9480 over RFC 6712): no actor token; each PKIMessage is authenticated by its own protection
        # (MAC over a proofing event's one-time secret, or the holder certificate's signature;
        # tests/service/protocols/test_cmp.py).
        ("POST", "/.well-known/cmp/p/{profile}"),
    }
)

ALL = frozenset(Role)
STAFF = frozenset({Role.MUNICIPAL_STAFF, Role.FISCAL_YEAR_STAFF})
READERS = STAFF | {Role.POST_OFFICE_STAFF, Role.CA_OPERATOR, Role.AUDITOR}

# Placeholders filled per backend: a real resident (so proofing reaches the policy) and the session CSR.
RESIDENT, CSR, CHAIN_CERT = "<resident>", "<csr>", "<chain-cert>"
NO_EVENT = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Sample:
    """One request per protected route: what an admitted role gets back, and who is admitted."""

    path: str
    roles: frozenset[Role]  # the pinned matrix; must equal what the route's RoleGate declares
    ok: frozenset[int]  # statuses an admitted role may get (403 only as policy-denied)
    body: Any = None

    def ok_for(self, role: Role) -> frozenset[int]:
        """A holder app is bound to one resident (here: none), so every resident it names is unknown to it."""
        return frozenset({404}) if role is Role.HOLDER_APP and RESIDENT in repr(self.body) else self.ok


SAMPLES: dict[RouteKey, Sample] = {
    ("GET", "/v1/policy"): Sample("/v1/policy", ALL, frozenset({200})),
    ("POST", "/v1/policy/evaluate"): Sample(
        "/v1/policy/evaluate",
        ALL,
        frozenset({200}),
        {"operation": "cert_issue", "channel": "counter_in_person", "role": "municipal_staff"},
    ),
    ("POST", "/v1/registry/import"): Sample(
        "/v1/registry/import", STAFF | {Role.CA_OPERATOR}, frozenset({200}), {"municipalities": [], "residents": []}
    ),
    ("POST", "/v1/residents"): Sample(
        "/v1/residents",
        STAFF | {Role.CA_OPERATOR},
        frozenset({404}),  # the municipality does not exist
        {
            "resident_number": "R-ROLES-0000",
            "name": "x",
            "address": "x",
            "municipality": "99999",
            "date_of_birth": "1990-01-01",
            "sex": "male",
        },
    ),
    ("GET", "/v1/residents/{number}"): Sample("/v1/residents/NOPE-0000", READERS, frozenset({404})),
    ("PATCH", "/v1/residents/{number}"): Sample(
        "/v1/residents/NOPE-0000", STAFF | {Role.CA_OPERATOR}, frozenset({404}), {"name": "x"}
    ),
    ("POST", "/v1/residents/{number}/cards"): Sample(
        "/v1/residents/NOPE-0000/cards",
        STAFF | {Role.CA_OPERATOR},
        frozenset({404}),
        {"number": "CNOPE0000", "issued_on": "2021-06-01"},
    ),
    ("POST", "/v1/cards/{number}/lost"): Sample(
        "/v1/cards/CNOPE0000/lost", STAFF | {Role.HOLDER_APP}, frozenset({404})
    ),
    ("POST", "/v1/proofing-events"): Sample(
        "/v1/proofing-events",
        ALL - {Role.AUDITOR, Role.CA_OPERATOR},
        frozenset({201, 403}),  # 403 only as policy-denied: the gate admits, the policy may still refuse
        {
            "resident_number": RESIDENT,
            "operation": "cert_issue",
            "channel": "counter_in_person",
            "evidence": COUNTER_EVIDENCE,
        },
    ),
    ("GET", "/v1/proofing-events/{event_id}"): Sample(f"/v1/proofing-events/{NO_EVENT}", READERS, frozenset({404})),
    ("POST", "/v1/certificates"): Sample(
        "/v1/certificates",
        STAFF | {Role.POST_OFFICE_STAFF, Role.HOLDER_APP},
        frozenset({404}),
        {
            "csr_pem": CSR,
            "resident_number": "NOPE-0000",
            "certificate_type": "signature",
            "proofing_event_id": NO_EVENT,
        },
    ),
    ("GET", "/v1/certificates/{serial}"): Sample("/v1/certificates/0badc0de", READERS, frozenset({404})),
    ("POST", "/v1/certificates/{serial}/revoke"): Sample(
        "/v1/certificates/0badc0de/revoke",
        STAFF | {Role.POST_OFFICE_STAFF, Role.CA_OPERATOR},
        frozenset({404}),
        {"reason": "keyCompromise"},
    ),
    ("POST", "/v1/card-issuances/batch"): Sample(
        "/v1/card-issuances/batch",
        frozenset({Role.CA_OPERATOR}),
        frozenset({200}),  # the batch answers; its one item failed 404 (tests/service/api/test_card_batch.py)
        {
            "items": [
                {
                    "resident_number": "NOPE-0000",
                    "proofing_event_id": NO_EVENT,
                    "card_number": "CNOPE0000",
                    "signature_csr_pem": CSR,
                    "user_authentication_csr_pem": CSR,
                }
            ]
        },
    ),
    ("POST", "/v1/card-issuances"): Sample(
        "/v1/card-issuances",
        STAFF | {Role.CA_OPERATOR},
        frozenset({404}),
        {
            "resident_number": "NOPE-0000",
            "proofing_event_id": NO_EVENT,
            "card_number": "CNOPE0000",
            "signature_csr_pem": CSR,
            "user_authentication_csr_pem": CSR,
        },
    ),
    ("POST", "/v1/phone-enrollments/nonce"): Sample(
        "/v1/phone-enrollments/nonce", frozenset({Role.HOLDER_APP}), frozenset({201})
    ),
    ("POST", "/v1/phone-enrollments"): Sample(
        "/v1/phone-enrollments",
        frozenset({Role.HOLDER_APP}),
        frozenset({409}),  # the CSR stands in for a card certificate it is not: refused, never issued
        {
            "card_certificate_pem": CHAIN_CERT,
            "device_id": "role-matrix-phone",
            "signature_csr_pem": CSR,
            "user_authentication_csr_pem": CSR,
            "nonce": "0" * 64,
            "application_signature_b64": "AAAA",
        },
    ),
    ("POST", "/v1/phone-renewals"): Sample(
        "/v1/phone-renewals",
        frozenset({Role.HOLDER_APP}),
        frozenset({409}),
        {"current_certificate_pem": CHAIN_CERT, "csr_pem": CSR, "nonce": "0" * 64, "signature_b64": "AAAA"},
    ),
    ("POST", "/v1/pin-resets"): Sample(
        "/v1/pin-resets",
        STAFF | {Role.KIOSK},
        frozenset({404}),
        {"proofing_event_id": NO_EVENT, "credential": "signature"},
    ),
    ("GET", "/v1/audit"): Sample("/v1/audit", frozenset({Role.AUDITOR}), frozenset({200})),
    ("GET", "/v1/audit/verify"): Sample("/v1/audit/verify", frozenset({Role.AUDITOR}), frozenset({200})),
}


def _gates(dependant: Dependant) -> list[RoleGate]:
    found = [dependant.call] if isinstance(dependant.call, RoleGate) else []
    for sub in dependant.dependencies:
        found += _gates(sub)
    return found


def route_table(app: FastAPI) -> dict[RouteKey, frozenset[Role] | None]:
    """(method, path) -> the roles its RoleGate admits, or None for a route without a gate.

    FastAPI keeps included routers as branches, so ``app.routes`` is walked with ``iter_route_contexts``,
    which yields each route with its effective (prefixed) path and dependant.
    """
    table: dict[RouteKey, frozenset[Role] | None] = {}
    for context in iter_route_contexts(app.routes):
        methods = (context.methods or set()) - {"HEAD"}
        assert methods, f"route {context.path} has no HTTP methods: a mount or websocket needs a rule here"
        gates = _gates(context.dependant) if isinstance(context.original_route, APIRoute) else []
        assert len(gates) <= 1, f"{context.path} has {len(gates)} role gates"
        for method in methods:
            key = (method, str(context.path))
            assert key not in table, f"{key} is declared twice"
            table[key] = gates[0].allowed if gates else None
    return table


def _fill(value: Any, api: Api, resident: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, api, resident) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, api, resident) for v in value]
    if not isinstance(value, str):
        return value
    root_pem = api.runtime.chain()[0].public_bytes(Encoding.PEM).decode()
    return {RESIDENT: resident, CSR: api.csr_pem, CHAIN_CERT: root_pem}.get(value, value)


def _send(api: Api, key: RouteKey, headers: dict[str, str]) -> httpx.Response:
    sample = SAMPLES[key]
    resident = api.new_resident() if RESIDENT in repr(sample.body) else ""
    body = _fill(sample.body, api, resident)
    response: httpx.Response = api.client.request(key[0], sample.path, json=body, headers=headers)
    return response


def _key_id(key: RouteKey) -> str:
    return f"{key[0]} {key[1]}"


def test_every_route_is_gated_or_deliberately_public(api: Api) -> None:
    table = route_table(api.client.app)  # type: ignore[arg-type]
    public = {key for key, allowed in table.items() if allowed is None}
    assert public == PUBLIC, "a route without a RoleGate must be listed in PUBLIC (and be meant to be public)"
    protected = set(table) - PUBLIC
    assert protected == set(SAMPLES), "every protected route needs a sample request in SAMPLES"
    declared = {key: table[key] for key in sorted(protected)}
    pinned = {key: SAMPLES[key].roles for key in sorted(protected)}
    assert declared == pinned, "the role matrix changed: update SAMPLES deliberately"
    for key, allowed in declared.items():
        assert allowed, f"{key} admits no role at all"


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("key", sorted(SAMPLES), ids=_key_id)
def test_role_matrix(api: Api, key: RouteKey, role: Role) -> None:
    allowed = route_table(api.client.app)[key]  # type: ignore[arg-type]
    assert allowed is not None
    response = _send(api, key, api.as_(role.value))
    problem_type = response.json().get("type") if response.headers["content-type"] == PROBLEM else None
    if role in allowed:
        assert response.status_code != 401, response.text
        assert problem_type != "/problems/role-forbidden", response.text
        if problem_type == "/problems/outside-jurisdiction":  # admitted by role, refused by municipality
            assert role in (Role.MUNICIPAL_STAFF, Role.FISCAL_YEAR_STAFF), response.text
            return
        assert response.status_code in SAMPLES[key].ok_for(role), response.text
        if response.status_code == 403:
            assert problem_type == "/problems/policy-denied", response.text
    else:
        assert response.status_code == 403, response.text
        assert problem_type == "/problems/role-forbidden", response.text
        assert role.value in response.json()["detail"]


BAD_CREDENTIALS = {
    "none": {},
    "garbage-token": {"Authorization": "Bearer ksn_not-a-real-token"},
    "empty-bearer": {"Authorization": "Bearer "},
    "basic-scheme": {"Authorization": "Basic b3BlcmF0b3I6c2VjcmV0"},
}


@pytest.mark.parametrize("credentials", sorted(BAD_CREDENTIALS))
@pytest.mark.parametrize("key", sorted(SAMPLES), ids=_key_id)
def test_without_a_valid_token_every_protected_route_is_401(api: Api, key: RouteKey, credentials: str) -> None:
    response = _send(api, key, BAD_CREDENTIALS[credentials])
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/authentication-required"
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_deactivated_actor_is_401(api: Api) -> None:
    actor, token = api.runtime.repo.add_actor("leaver", Role.MUNICIPAL_STAFF.value, None)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/policy", headers=headers).status_code == 200
    with Session(api.runtime.repo.engine) as session:
        session.exec(update(Actor).where(col(Actor.id) == actor.id).values(active=False))
        session.commit()
    response = api.client.get("/v1/policy", headers=headers)
    assert response.status_code == 401 and response.json()["type"] == "/problems/authentication-required"


@pytest.mark.parametrize(
    "path", ["/healthz", "/v1/ca/chain", "/crl/signature.crl", "/ca/root.cer", "/openapi.json", "/docs"]
)
def test_public_routes_need_no_token(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 200
