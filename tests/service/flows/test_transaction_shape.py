"""The shape of the write path, pinned: how many database sessions (pool checkouts) and write transactions one
plain issuance and one card renewal make, counted with SQLAlchemy event listeners on the runtime's engine.

The pipeline's shape is: one context read, one intent transaction, one outcome transaction. The REST route adds
one read for the bearer token (not counted here: the flow is called directly, in this thread, so the service's
background threads, publisher and checkpointer, are not counted either).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, event

from service.db.registry_models import Actor
from service.flows.card_issuance import CardIssueInput, issue_card
from service.flows.issuance import IssueInput, issue_certificate
from tests.support.api_world import COUNTER_EVIDENCE, Api

pytestmark = pytest.mark.hsm
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Shape:
    sessions: int = 0
    transactions: int = 0
    writes: int = 0  # transactions that committed at least one INSERT, UPDATE or DELETE
    statements: list[str] = field(default_factory=list)
    _writing: set[int] = field(default_factory=set)


@contextmanager
def counted(engine: Engine) -> Iterator[Shape]:
    shape, me = Shape(), threading.get_ident()

    def checkout(*_: Any) -> None:
        if threading.get_ident() == me:
            shape.sessions += 1

    def begin(connection: Any) -> None:
        if threading.get_ident() == me:
            shape.transactions += 1

    def execute(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == me:
            shape.statements.append(statement.split(None, 1)[0].upper())
            if statement.lstrip().upper().startswith(WRITES):
                shape._writing.add(id(connection))

    def commit(connection: Any) -> None:
        if threading.get_ident() == me and id(connection) in shape._writing:
            shape._writing.discard(id(connection))
            shape.writes += 1

    listeners = [(engine, "checkout", checkout), (engine, "begin", begin),
                 (engine, "before_cursor_execute", execute), (engine, "commit", commit)]  # fmt: skip
    for target, name, function in listeners:
        event.listen(target, name, function)
    try:
        yield shape
    finally:
        for target, name, function in listeners:
            event.remove(target, name, function)


@dataclass
class Handed:
    """Stands in for the CRL publisher: records what the pipeline hands to publication."""

    issuers: list[str] = field(default_factory=list)

    def revoked(self, issuers: Iterable[str]) -> None:
        self.issuers += sorted(issuers)


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    return (
        x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)
    )


def _staff(api: Api) -> Actor:
    actor = api.runtime.repo.actor_by_token(api.tokens["municipal_staff"])
    assert actor is not None
    return actor


def _event(api: Api, resident: str, operation: str) -> str:
    body = {"resident_number": resident, "operation": operation, "channel": "counter_in_person",
            "evidence": COUNTER_EVIDENCE}  # fmt: skip
    response = api.post("/v1/proofing-events", "municipal_staff", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_plain_issuance_is_one_read_and_two_write_transactions(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event_id = _event(api, resident, "cert_issue")
    item = IssueInput(csr=_csr(), resident_number=resident, certificate_type="signature", proofing_event_id=event_id,
                      card_number=api.card_of(resident))  # fmt: skip
    staff, handed = _staff(api), Handed()
    monkeypatch.setattr(api.runtime, "publisher", handed)
    with counted(api.runtime.repo.engine) as shape:
        issued = issue_certificate(api.runtime, staff, item)
    assert issued.record.status == "issued" and handed.issuers == []
    assert (shape.sessions, shape.transactions, shape.writes) == (3, 3, 2), shape.statements


def test_a_card_renewal_is_one_read_and_two_write_transactions(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    old_card = api.card_of(resident)
    staff = _staff(api)
    first = CardIssueInput(resident, _event(api, resident, "card_issue"), old_card,
                           {"signature": _csr(), "user-authentication": _csr()})  # fmt: skip
    issue_card(api.runtime, staff, first)
    new_card = f"C{uuid.uuid4().hex[:12].upper()}"
    added = api.post(
        f"/v1/residents/{resident}/cards", "municipal_staff", {"number": new_card, "issued_on": "2026-11-30"}
    )
    assert added.status_code == 201, added.text
    renewal = CardIssueInput(resident, _event(api, resident, "card_renew"), new_card,
                             {"signature": _csr(), "user-authentication": _csr()}, replaces_card=old_card)  # fmt: skip
    handed = Handed()
    monkeypatch.setattr(api.runtime, "publisher", handed)
    with counted(api.runtime.repo.engine) as shape:
        result = issue_card(api.runtime, staff, renewal)
    assert len(result.revoked) == 2 and all(r.status == "revoked" for r in result.revoked)
    assert handed.issuers == ["signature", "user-authentication"]  # the old card's CAs go to publication
    assert (shape.sessions, shape.transactions, shape.writes) == (3, 3, 2), shape.statements
