"""The world the hostile-input suite attacks: two municipalities, two residents with live certificates, an actor
of every role (and the ones a role can be confused with), and a snapshot of everything a request could change.

Miyazaki (452017) delegated e-certificate work to the post office; Matsuyama (382019) did not. Hanako lives in
Miyazaki, Taro in Matsuyama; each has an active card with a signature and a user-authentication certificate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import Session, col, select

from service.db.models import CertificateRecord
from service.db.registry_models import Card, ProofingEvent
from tests.support.api_world import COUNTER_EVIDENCE, MATSUYAMA, MIYAZAKI, Api

PROBLEM = "application/problem+json"

# alias -> (role, municipality, bound resident alias)
ACTORS: dict[str, tuple[str, str | None, str | None]] = {
    "miyazaki_staff": ("municipal_staff", MIYAZAKI, None),
    "miyazaki_colleague": ("municipal_staff", MIYAZAKI, None),
    "miyazaki_fiscal": ("fiscal_year_staff", MIYAZAKI, None),
    "matsuyama_staff": ("municipal_staff", MATSUYAMA, None),
    "matsuyama_fiscal": ("fiscal_year_staff", MATSUYAMA, None),
    "miyazaki_post": ("post_office_staff", MIYAZAKI, None),
    "matsuyama_post": ("post_office_staff", MATSUYAMA, None),
    "other_staff": ("other_municipality_staff", MATSUYAMA, None),
    "contractor": ("contractor", MIYAZAKI, None),
    "kiosk": ("kiosk", MIYAZAKI, None),
    "hanako_app": ("holder_app", None, "hanako"),
    "taro_app": ("holder_app", None, "taro"),
    "unbound_app": ("holder_app", None, None),
    "auditor": ("auditor", None, None),
    "operator": ("ca_operator", None, None),
}


@dataclass
class Holder:
    number: str
    card: str
    signature: str  # serial hex
    authentication: str


@dataclass
class World:
    api: Api
    tokens: dict[str, str]
    holders: dict[str, Holder]
    responder: str  # the signature CA's CMP responder certificate, a service certificate

    def call(self, method: str, path: str, who: str | None, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        response: httpx.Response = self.api.client.request(method, path, json=body, headers=headers, **kwargs)
        return response

    def snapshot(self) -> tuple[Any, ...]:
        """Every certificate row's status, every card's status, every used proofing event: what no refused
        request may change (audit rows of the refusal excepted)."""
        with Session(self.api.runtime.repo.engine) as session:
            certificates = session.exec(
                select(CertificateRecord.serial_hex, CertificateRecord.status).order_by(col(CertificateRecord.id))
            ).all()
            cards = session.exec(select(Card.number, Card.status).order_by(col(Card.id))).all()
            used = session.exec(select(ProofingEvent.id).where(col(ProofingEvent.used_at).is_not(None))).all()
        return tuple(certificates), tuple(cards), frozenset(used)

    def event(self, holder: str, who: str = "miyazaki_staff", **fields: Any) -> dict[str, Any]:
        body = {"resident_number": self.holders[holder].number, "operation": "cert_issue",
                "channel": "counter_in_person", "evidence": COUNTER_EVIDENCE, **fields}  # fmt: skip
        response = self.call("POST", "/v1/proofing-events", who, body)
        assert response.status_code == 201, response.text
        out: dict[str, Any] = response.json()
        return out


def _issue(api: Api, tokens: dict[str, str], clerk: str, number: str, card: str, profile: str) -> str:
    headers = {"Authorization": f"Bearer {tokens[clerk]}"}
    body = {"resident_number": number, "operation": "cert_issue", "channel": "counter_in_person",
            "evidence": COUNTER_EVIDENCE}  # fmt: skip
    event = api.client.post("/v1/proofing-events", json=body, headers=headers)
    assert event.status_code == 201, event.text
    issued = api.client.post("/v1/certificates", headers=headers, json={
        "csr_pem": api.csr_pem, "resident_number": number, "certificate_type": profile,
        "proofing_event_id": event.json()["id"], "card_number": card})  # fmt: skip
    assert issued.status_code == 201, issued.text
    return str(issued.json()["serial"])


def build_world(api: Api) -> World:
    repo = api.runtime.repo
    holders: dict[str, Holder] = {}
    tokens: dict[str, str] = {}
    clerks = {"hanako": ("miyazaki_staff", MIYAZAKI), "taro": ("matsuyama_staff", MATSUYAMA)}
    for alias, (clerk, code) in clerks.items():
        role, municipality, _ = ACTORS[clerk]
        tokens[clerk] = repo.add_actor(f"hostile-{clerk}", role, municipality)[1]
        number, card = f"H-{uuid.uuid4().hex[:12]}", f"H{uuid.uuid4().hex[:12].upper()}"
        created = api.client.post("/v1/residents", headers={"Authorization": f"Bearer {tokens[clerk]}"}, json={
            "resident_number": number, "name": "宮崎 花子" if alias == "hanako" else "松山 太郎",
            "address": "宮崎県宮崎市橘通西一丁目1番1号" if alias == "hanako" else "愛媛県松山市二番町四丁目7番地2",
            "municipality": code, "date_of_birth": "1988-04-12", "sex": "female" if alias == "hanako" else "male",
            "cards": [{"number": card, "issued_on": "2021-06-01"}]})  # fmt: skip
        assert created.status_code == 201, created.text
        signature = _issue(api, tokens, clerk, number, card, "signature")
        authentication = _issue(api, tokens, clerk, number, card, "user-authentication")
        holders[alias] = Holder(number, card, signature, authentication)
    for alias, (role, municipality, bound) in ACTORS.items():
        if alias not in tokens:
            resident = holders[bound].number if bound else None
            tokens[alias] = repo.add_actor(f"hostile-{alias}", role, municipality, resident)[1]
    responders = [r for r in repo.certificates("issued", "cmp-responder") if r.issuer == "signature"]
    return World(api, tokens, holders, responders[-1].serial_hex)
