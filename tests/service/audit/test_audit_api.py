"""The audit log: state changes over the API leave ordered, attributed records; tampering is found.

The read-side test drives the shared ``api`` runtime. The tamper tests edit the database directly, so they run
on a fresh runtime and database of their own (per backend) and never touch the shared one. Edits the hash chain
and tree state show come first; then what only the checkpoints signed on the token show
(service/audit/verification.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlmodel import Session

from service.api.app import create_app
from service.audit.anchor import audit_anchor
from service.audit.checkpoint import Checkpoint, key_sha256
from service.audit.verification import verify_installation
from service.db.audit_log import record_hash
from service.db.audit_models import AuditCheckpoint, AuditRecord
from service.db.unit import WRITE_OPTION
from service.runtime import Runtime
from tests.conftest import SoftHsm, require_softhsm
from tests.support.api_world import REGISTRY, Api, make_runtime
from tests.support.audit import record_at, restore_tree_head, rewrite_log_from
from tests.support.crl_wait import wait_for_crl
from tests.support.helpers import run

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

KOSHIN = str(Path(sys.executable).parent / "koshin")


def _records(api: Api, after: int) -> list[dict[str, Any]]:
    response = api.client.get(f"/v1/audit?after={after}&limit=1000", headers=api.as_("auditor"))
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def _one(records: list[dict[str, Any]], action: str, obj: str) -> dict[str, Any]:
    found = [r for r in records if r["action"] == action and r["object"] == obj]
    assert len(found) == 1, f"{action} {obj}: {found}"
    return found[0]


def test_state_changes_are_audited_in_order_with_actor_role_and_rule(api: Api) -> None:
    before = api.client.get("/v1/audit/verify", headers=api.as_("auditor")).json()
    assert before["intact"] is True, before
    start = before["records"]

    resident = api.new_resident()
    event = api.proof(resident)
    assert event.status_code == 201, event.text
    allow_rule = event.json()["decision"]["rule_id"]
    denied = api.proof(resident, who="contractor", channel="outreach_in_person")
    assert denied.status_code == 403, denied.text
    deny_rule = denied.json()["rule_id"]
    body = {"csr_pem": api.csr_pem, "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event.json()["id"], "card_number": api.card_of(resident)}  # fmt: skip
    issued = api.post("/v1/certificates", "municipal_staff", body)
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]
    revoked = api.post(f"/v1/certificates/{serial}/revoke", "municipal_staff", {"reason": "keyCompromise"})
    assert revoked.status_code == 200, revoked.text
    wait_for_crl(lambda: api.client.get("/crl/signature.crl").content, {int(serial, 16)})  # published after it

    records = _records(api, start)
    assert [r["seq"] for r in records] == sorted({r["seq"] for r in records})  # numbered by the database, once
    _wait_until_integrated(api)  # the sequencer places each within a tick (100 ms)
    records = _records(api, start)
    places = [r["leaf_index"] for r in records]
    assert None not in places and len(set(places)) == len(places)
    assert all(r["integrated_at"] >= r["at"] for r in records)

    staff = {"actor": "municipal_staff-1", "role": "municipal_staff"}
    created = _one(records, "resident.create", resident)
    assert created.items() >= staff.items()
    proofed = _one(records, "proofing.record", event.json()["id"])
    assert proofed.items() >= {**staff, "rule_id": allow_rule, "decision": "allow"}.items()
    assert proofed["details"] == {"operation": "cert_issue", "channel": "counter_in_person"}
    refusal = _one(records, "policy.deny", f"resident:{resident}")
    assert refusal.items() >= {"actor": "contractor-1", "role": "contractor", "rule_id": deny_rule}.items()
    assert refusal["decision"] == "deny" and refusal["details"]["channel"] == "outreach_in_person"
    for action in ("certificate.intent", "certificate.issue"):
        record = _one(records, action, serial)
        assert record.items() >= {**staff, "rule_id": allow_rule, "decision": "allow"}.items(), record
    revocation = _one(records, "certificate.revoke", serial)
    assert revocation.items() >= staff.items() and revocation["details"] == {"reason": "keyCompromise"}

    order = [
        created["seq"],
        proofed["seq"],
        refusal["seq"],
        _one(records, "proofing.use", event.json()["id"])["seq"],
        _one(records, "certificate.intent", serial)["seq"],
        _one(records, "certificate.issue", serial)["seq"],
        revocation["seq"],
    ]
    assert order == sorted(order)
    assert any(r["action"] == "crl.publish" and r["seq"] > revocation["seq"] for r in records)

    page = _records(api, start)[:2]
    limited = api.client.get(f"/v1/audit?after={start}&limit=2", headers=api.as_("auditor")).json()
    assert limited == page

    after = api.client.get("/v1/audit/verify", headers=api.as_("auditor")).json()
    assert after.items() >= {"intact": True, "first_broken": None, "problem": None}.items(), after
    assert after["records"] + after["pending"] >= start + len(records)
    assert after["checkpoints"] >= 1, after  # the start-up checkpoint of the app (service/audit/schedule.py)
    assert 0 < after["anchored_records"] <= after["records"]


def _wait_until_integrated(api: Api) -> None:
    deadline = time.monotonic() + 30
    while api.runtime.repo.audit_position().pending:
        assert time.monotonic() < deadline, "the sequencer did not integrate"
        time.sleep(0.02)


# -- tampering, on a runtime and database of its own ------------------------------------------------------------


@dataclass
class Fresh:
    runtime: Runtime
    client: TestClient
    auditor: dict[str, str]

    def verify(self) -> dict[str, Any]:
        response = self.client.get("/v1/audit/verify", headers=self.auditor)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        report = verify_installation(self.runtime)  # the CLI's check: the same verdict
        assert (report.intact, report.first_broken, report.problem) == (
            body["intact"],
            body["first_broken"],
            body["problem"],
        )
        return body

    def session(self) -> Session:
        """A session that writes as the service does (SQLite: BEGIN IMMEDIATE, so the edit waits for the
        sequencer's transaction instead of failing its snapshot upgrade with "database is locked")."""
        return Session(self.runtime.repo.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)

    def settled(self) -> None:
        """Nothing waits for the sequencer (so it does not move the tree under a test's edit)."""
        deadline = time.monotonic() + 30
        while self.runtime.repo.audit_position().pending:
            assert time.monotonic() < deadline, "the sequencer did not integrate"
            time.sleep(0.02)


@pytest.fixture
def fresh(softhsm: SoftHsm, tmp_path: Path, database_url: str) -> Iterator[Fresh]:
    runtime = make_runtime(softhsm, tmp_path / "home", database_url, f"audit-{uuid.uuid4().hex[:8]}-")
    try:
        with TestClient(create_app(runtime.settings, runtime=runtime), raise_server_exceptions=False) as client:
            operator = {"Authorization": f"Bearer {runtime.repo.add_actor('operator', 'ca_operator', None)[1]}"}
            auditor = {"Authorization": f"Bearer {runtime.repo.add_actor('auditor', 'auditor', None)[1]}"}
            _wait_for_the_start_up_checkpoint(runtime)
            assert client.post("/v1/registry/import", json=REGISTRY, headers=operator).status_code == 200
            yield Fresh(runtime, client, auditor)
    finally:
        runtime.close()


def _wait_for_the_start_up_checkpoint(runtime: Runtime) -> None:
    """The app signs one when it starts, on a thread; waiting for it keeps the numbering below predictable."""
    deadline = time.monotonic() + 30
    while not audit_anchor(runtime).stored():
        assert time.monotonic() < deadline, "no start-up checkpoint"
        time.sleep(0.02)


def _middle(fresh: Fresh) -> tuple[int, AuditRecord]:
    """A record in the middle of the tree, and its position (1-based)."""
    fresh.settled()
    report = fresh.verify()
    assert report["intact"] and report["records"] >= 5, report
    position = report["records"] // 2
    with fresh.session() as session:
        return position, record_at(session, position)


@pytest.mark.parametrize("field", ["details", "actor"])
def test_an_edited_record_is_reported_as_altered(fresh: Fresh, field: str) -> None:
    position, target = _middle(fresh)
    seq, original = target.seq, getattr(target, field)
    forged = json.dumps({"forged": True}) if field == "details" else "mallory"
    with fresh.session() as session:
        row = session.get(AuditRecord, seq)
        assert row is not None
        setattr(row, field, forged)
        session.add(row)
        session.commit()

    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] == position
    assert report["problem"] == f"record {position} was altered (its hash does not match its content)"

    with fresh.session() as session:  # put it back: the chain holds again
        row = session.get(AuditRecord, seq)
        assert row is not None
        setattr(row, field, original)
        session.add(row)
        session.commit()
    assert fresh.verify()["intact"] is True


def test_a_rehashed_edit_no_longer_makes_the_stored_tree_head(fresh: Fresh) -> None:
    _, target = _middle(fresh)
    with fresh.session() as session:
        row = session.get(AuditRecord, target.seq)
        assert row is not None
        row.actor = "mallory"
        row.hash = record_hash(row)
        session.add(row)
        session.commit()
    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] is None
    assert report["problem"].startswith("the stored tree head is not the head of records 1-")


def test_a_deleted_record_is_reported_missing(fresh: Fresh) -> None:
    position, target = _middle(fresh)
    saved = target.model_dump()
    with fresh.session() as session:
        row = session.get(AuditRecord, target.seq)
        session.delete(row)
        session.commit()

    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] == position
    assert report["problem"] == f"record {position} is missing (the next in the tree is {position + 1})"

    with fresh.session() as session:
        session.add(AuditRecord(**saved))
        session.commit()
    assert fresh.verify()["intact"] is True


def test_a_truncated_tail_is_reported(fresh: Fresh) -> None:
    fresh.settled()
    last = fresh.verify()["records"]
    with fresh.session() as session:
        session.delete(record_at(session, last))
        session.commit()
    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] == last
    assert report["problem"] == f"the tree says {last} records; {last - 1} remain"


# -- what only the signed checkpoints catch -------------------------------------------------------------------------


def _anchored(fresh: Fresh) -> Checkpoint:
    """A checkpoint of the current head, signed on the token; the chain verifies with it."""
    made = audit_anchor(fresh.runtime).checkpoint()
    report = fresh.verify()
    assert report["intact"] and report["anchored_records"] == made.seq == report["records"], report
    return made


def _rewind(fresh: Fresh, keep: int) -> None:
    """Delete the tree's records after position ``keep`` and make the tree state agree (head and edge too)."""
    with fresh.session() as session:
        for position in range(keep + 1, fresh.verify()["records"] + 1):
            session.delete(record_at(session, position))
        session.flush()
        restore_tree_head(session)
        session.commit()


def _first_covering(fresh: Fresh, seq: int) -> Checkpoint:
    """The oldest checkpoint that covers record ``seq`` (the app's start-up checkpoint may be older than ours)."""
    return next(c for c in audit_anchor(fresh.runtime).stored() if c.seq >= seq)


def test_a_deleted_tail_with_a_rewound_head_is_found(fresh: Fresh) -> None:
    keep = _anchored(fresh).seq - 3
    catches = _first_covering(fresh, keep + 1)
    _rewind(fresh, keep)
    assert fresh.runtime.repo.verify_audit().intact  # the records and the tree state alone: consistent, and wrong
    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] == keep + 1
    assert report["problem"].startswith(f"the log ends at record {keep} but checkpoint {catches.number} (")
    assert f"signed {catches.seq} records: records {keep + 1}-{catches.seq} were deleted" in report["problem"]


def test_a_rewritten_log_with_recomputed_hashes_is_found(fresh: Fresh) -> None:
    start = _anchored(fresh).seq // 2
    catches = _first_covering(fresh, start)
    with fresh.session() as session:
        rewrite_log_from(session, start)
    assert fresh.runtime.repo.verify_audit().intact
    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] == catches.seq
    if catches.seq == start:  # the record it signed the hash of
        assert report["problem"].startswith(f"record {catches.seq} is not the one checkpoint {catches.number} (")
    else:  # a record inside the tree it signed the head of
        assert report["problem"] == (f"the Merkle tree of records 1-{catches.seq} is not the one checkpoint "
                                     f"{catches.number} signed")  # fmt: skip


def test_a_forged_checkpoint_fails(fresh: Fresh) -> None:
    made = _anchored(fresh)
    # an older checkpoint of a shorter log (the start-up one): the sequencer may also have signed the same head
    keep = max(c.seq for c in audit_anchor(fresh.runtime).stored() if c.seq < made.seq)
    assert keep < made.seq
    _rewind(fresh, keep)
    with fresh.session() as session:  # the intruder makes the stored checkpoint agree with the shorter chain
        row, last = session.get(AuditCheckpoint, made.number), record_at(session, keep)
        assert row is not None and last is not None
        row.seq = row.records = keep
        row.head_hash = last.hash
        session.add(row)
        session.commit()
    report = fresh.verify()
    assert report["intact"] is False and report["first_broken"] is None
    assert report["problem"] == (
        f"checkpoint {made.number}: the signature does not verify with the audit key (forged or altered)"
    )

    with fresh.session() as session:  # ... or signs it with a key of their own
        session.delete(session.get(AuditCheckpoint, made.number))
        session.commit()
    own = ec.generate_private_key(ec.SECP256R1())
    spki = own.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    unsigned = replace(made, seq=keep, records=keep, head_hash=last.hash, key_sha256=key_sha256(spki))
    forged = replace(unsigned, signature=own.sign(unsigned.statement(), ec.ECDSA(hashes.SHA256())))
    with fresh.session() as session:
        session.add(forged.row())
        session.commit()
    assert "names another signing key" in fresh.verify()["problem"]


def test_deleted_checkpoint_rows_are_caught_by_the_file(fresh: Fresh) -> None:
    made = _anchored(fresh)
    with fresh.session() as session:
        session.delete(session.get(AuditCheckpoint, made.number))
        session.commit()
    report = fresh.verify()
    assert report["intact"] is False
    assert f"checkpoint {made.number} (" in report["problem"]
    assert "is missing from the database: checkpoint rows were deleted" in report["problem"]


# -- the operator command ---------------------------------------------------------------------------------------


def _koshin(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOSHIN_", "SOFTHSM2_CONF"))}
    env |= {"KOSHIN_HOME": str(home), "COLUMNS": "200"}
    return run([KOSHIN, *args], env=env, timeout=180)


def test_cli_audit_verify_finds_an_edited_record(tmp_path: Path) -> None:
    require_softhsm()
    home = tmp_path / "home"
    init = _koshin(home, "init")
    assert init.returncode == 0, init.stderr

    intact = _koshin(home, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout

    with sqlite3.connect(home / "koshin.db") as db:
        db.execute("UPDATE audit_record SET actor = 'mallory' WHERE seq = 2")
    db.close()

    broken = _koshin(home, "audit", "verify")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN at record 2" in broken.stdout and "altered" in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr
