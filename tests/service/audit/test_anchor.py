"""Signed audit checkpoints end to end: ``koshin audit checkpoint|checkpoints|key|verify`` on an embedded home,
tampering that the records alone cannot show, off-host copies, and the audit key's provisioning."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import create_engine
from sqlmodel import Session

from hsm.key_rules import audit_entry
from service.audit.anchor import audit_anchor, audit_key_label
from service.audit.sequencer import Sequencer
from service.db.audit_log import AuditEntry, append
from service.db.leadership import Leadership
from service.errors import AuditKeyUnsound
from service.provisioning import provision
from service.runtime import Runtime
from tests.conftest import SoftHsm, require_softhsm
from tests.support.api_world import make_runtime
from tests.support.audit import rewrite_log_from
from tests.support.helpers import run

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

KOSHIN = str(Path(sys.executable).parent / "koshin")


class Home:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KOSHIN_", "SOFTHSM2_CONF"))}
        self.env |= {"KOSHIN_HOME": str(home), "COLUMNS": "200"}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run([KOSHIN, *args], env=self.env, timeout=180)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        return result

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"koshin {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    def broken(self, *args: str) -> str:
        result = self("audit", "verify", *args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "audit log BROKEN" in result.stdout, result.stdout
        return result.stdout

    def sql(self, *statements: str) -> None:
        with sqlite3.connect(self.home / "koshin.db") as db:
            for statement in statements:
                db.execute(statement)
        db.close()

    def backup(self) -> Path:
        return Path(shutil.copy(self.home / "koshin.db", self.home / "koshin.db.bak"))

    def restore(self, backup: Path) -> None:
        shutil.copy(backup, self.home / "koshin.db")
        for wal in (self.home / "koshin.db-wal", self.home / "koshin.db-shm"):
            wal.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    require_softhsm()
    cli = Home(tmp_path_factory.mktemp("anchor") / "home")
    cli.ok("init")
    return cli


def _rewind(cli: Home, keep: int) -> None:
    """What a database writer can do: delete the tree's tail and shrink the tree state to ``keep`` records."""
    cli.sql(
        f"DELETE FROM audit_record WHERE leaf_index >= {keep}",  # noqa: S608 - test-controlled integers
        f"UPDATE audit_tree SET size = {keep}, root = NULL, frontier = NULL",  # noqa: S608
    )


def test_checkpoint_is_printed_stored_and_appended(home: Home) -> None:
    line = home.ok("audit", "checkpoint").strip()
    body = json.loads(line)
    assert body["v"] == 2 and body["seq"] == body["records"] >= 5 and len(body["hash"]) == 64
    assert len(body["root"]) == 64  # the Merkle tree head of records 1..seq
    proof = json.loads(home.ok("audit", "prove", "3"))
    assert proof["leaf_index"] == 2 and proof["tree_size"] == body["seq"] and proof["root"] == body["root"]
    assert proof["checkpoint"] == line and len(proof["path"]) >= 1
    note = home.ok("audit", "note").splitlines()
    assert note[1:3] == [str(body["seq"]), base64.b64encode(bytes.fromhex(body["root"])).decode()]
    assert note[3] == "" and note[4].startswith(f"\u2014 {note[0]} ")  # C2SP tlog-checkpoint, signed note
    assert line in (home.home / "audit" / "checkpoints.jsonl").read_text().splitlines()
    assert line in home.ok("audit", "checkpoints").splitlines()

    pem = home.ok("audit", "key")
    spki = load_pem_public_key(pem.encode()).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(spki).hexdigest() == body["key"]
    _openssl_verifies(home.home.parent, body, pem)
    assert (home.home / "audit" / "audit-key.pem").read_text().strip() == pem.strip()

    keys = json.loads(home.ok("keys", "audit", "--json"))
    audit_key = [k for k in keys["keys"] if k["label"] == "koshin-audit" and k["class"] == "PRIVATE_KEY"]
    assert len(audit_key) == 1 and keys["violations"] == 0

    out = home.ok("audit", "verify")
    assert f"audit log intact: {body['records']} records in the tree" in out
    assert f"signed checkpoints verified; the newest covers {body['records']} records" in out


def _openssl_verifies(scratch: Path, body: dict[str, object], pem: str) -> None:
    """README's recipe, step 3: the signed statement rebuilt from the published line, checked by openssl."""
    fields = {k: v for k, v in body.items() if k != "sig"}
    statement = b"koshin audit checkpoint v1\n" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    (scratch / "statement.bin").write_bytes(statement)
    (scratch / "sig.bin").write_bytes(base64.b64decode(str(body["sig"])))
    (scratch / "audit-key.pem").write_text(pem)
    verified = run(["openssl", "dgst", "-sha256", "-verify", str(scratch / "audit-key.pem"), "-signature",
                    str(scratch / "sig.bin"), str(scratch / "statement.bin")], timeout=30)  # fmt: skip
    assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified.stdout + verified.stderr
    (scratch / "statement.bin").write_bytes(statement.replace(b'"records":', b'"records":1', 1))
    forged = run(["openssl", "dgst", "-sha256", "-verify", str(scratch / "audit-key.pem"), "-signature",
                  str(scratch / "sig.bin"), str(scratch / "statement.bin")], timeout=30)  # fmt: skip
    assert forged.returncode != 0


def test_rewound_tail_is_broken_and_an_off_host_copy_survives_a_host_wipe(home: Home, tmp_path: Path) -> None:
    checkpoint = json.loads(home.ok("audit", "checkpoint"))
    offhost = Path(shutil.copy(home.home / "audit" / "checkpoints.jsonl", tmp_path / "published.jsonl"))
    backup = home.backup()
    try:
        keep = checkpoint["seq"] - 2
        _rewind(home, keep)
        out = home.broken()
        assert f"BROKEN at record {keep + 1}: the log ends at record {keep}" in out
        assert "were deleted and the tree rewound" in out
        refused = home("audit", "checkpoint")
        assert refused.returncode == 1 and "not signing a rewound log" in refused.stderr

        # An intruder on the host also deletes the checkpoint rows and the local file: only the copy tells.
        home.sql("DELETE FROM audit_checkpoint")
        local = home.home / "audit" / "checkpoints.jsonl"
        saved = local.read_bytes()
        local.unlink()
        try:
            assert home("audit", "verify").returncode == 0  # what the host alone can still prove
            assert "tree rewound" in home.broken("--checkpoints", str(offhost))
        finally:
            local.write_bytes(saved)
    finally:
        home.restore(backup)
    assert home("audit", "verify").returncode == 0


def test_deleted_checkpoint_rows_are_caught_by_the_file(home: Home, tmp_path: Path) -> None:
    home.ok("audit", "checkpoint")
    offhost = Path(shutil.copy(home.home / "audit" / "checkpoints.jsonl", tmp_path / "published.jsonl"))
    backup = home.backup()
    try:
        home.sql("DELETE FROM audit_checkpoint WHERE number = (SELECT MAX(number) FROM audit_checkpoint)")
        out = home.broken("--checkpoints", str(offhost))
        assert "is missing from the database: checkpoint rows were deleted" in out
        assert "is missing from the database" in home.broken()  # the host's own file, by default
        home.sql("DELETE FROM audit_checkpoint WHERE number = 1")
        assert "checkpoint 1 is missing from the database (the next is 2)" in home.broken()
    finally:
        home.restore(backup)


def test_a_forged_line_or_another_key_fails(home: Home, tmp_path: Path) -> None:
    line = json.loads(home.ok("audit", "checkpoint"))
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps({**line, "records": line["records"] + 1, "seq": line["seq"] + 1}) + "\n")
    assert "the signature does not verify with the audit key (forged or altered)" in home.broken(
        "--checkpoints", str(forged)
    )

    other = tmp_path / "other.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    assert "names another signing key" in home.broken("--key", str(other))
    pinned = tmp_path / "pinned.pem"
    pinned.write_text(home.ok("audit", "key"))
    assert home("audit", "verify", "--key", str(pinned)).returncode == 0

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    assert f"audit log BROKEN: {garbage} line 1: not a checkpoint" in home.broken("--checkpoints", str(garbage))
    assert "No such file" in home("audit", "verify", "--checkpoints", str(tmp_path / "absent.jsonl")).stderr


def test_rewritten_log_with_recomputed_hashes_is_broken(home: Home) -> None:
    checkpoint = json.loads(home.ok("audit", "checkpoint"))
    backup = home.backup()
    try:
        engine = create_engine(f"sqlite:///{home.home / 'koshin.db'}")
        with Session(engine) as db:
            rewrite_log_from(db, checkpoint["seq"] - 1)  # the record before the last: the head hash still matches
        engine.dispose()
        out = home.broken()
        assert f"BROKEN at record {checkpoint['seq']}: the Merkle tree of records 1-{checkpoint['seq']}" in out
        assert "is not the one checkpoint" in out
        with Session(engine) as db:
            rewrite_log_from(db, checkpoint["seq"])  # the last record: its signed hash no longer matches
        engine.dispose()
        out = home.broken()
        assert f"BROKEN at record {checkpoint['seq']}: record {checkpoint['seq']} is not the one checkpoint" in out
        assert "the log was rewritten at or before" in out
    finally:
        home.restore(backup)


# -- in process: provisioning and the schedule ------------------------------------------------------------------


@pytest.fixture
def runtime(softhsm: SoftHsm, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(softhsm, tmp_path / "home", f"sqlite:///{tmp_path / 'k.db'}", f"anchor-{uuid.uuid4().hex[:8]}-")
    try:
        yield rt
    finally:
        rt.close()


def test_existing_installations_get_the_key_and_an_unsound_one_is_refused(runtime: Runtime) -> None:
    label = audit_key_label(runtime)
    [info] = [i for i in runtime.session.key_objects() if i.label == label and i.object_class == "PRIVATE_KEY"]
    assert audit_entry(info).violations == ()
    runtime.session.delete_key(label)  # as before checkpoints existed
    assert provision(runtime) is False and runtime.session.has_key(label)

    runtime.session.delete_key(label)
    runtime.session.generate_keypair(runtime.settings.ca_key_algorithm, label, for_injection=True)  # wrappable
    with pytest.raises(AuditKeyUnsound, match="EXTRACTABLE"):
        provision(runtime)
    runtime.session.delete_key(label)
    provision(runtime)


def _sequencer(rt: Runtime, checkpoint_seconds: float, checkpoint_records: int) -> Sequencer:
    return Sequencer(audit_anchor(rt), Leadership(rt.repo.engine), interval=0.02, lead_poll=0.02,
                     checkpoint_seconds=checkpoint_seconds, checkpoint_records=checkpoint_records)  # fmt: skip


def test_the_sequencer_integrates_and_checkpoints_after_n_records_on_the_timer_and_at_shutdown(
    runtime: Runtime,
) -> None:
    anchor = audit_anchor(runtime)
    counted = _sequencer(runtime, checkpoint_seconds=3600, checkpoint_records=3)
    counted.start()
    _wait_for(lambda: len(anchor.stored()) == 1)  # taking the lead: the ceremony's records
    _append(runtime, 2)
    _wait_for(lambda: runtime.repo.audit_position().pending == 0)  # integrated within a few ticks ...
    looked = counted.ticks
    _wait_for(lambda: counted.ticks >= looked + 5)
    assert len(anchor.stored()) == 1  # ... but not signed: 2 of 3 records, an hour to go
    _append(runtime, 1)
    _wait_for(lambda: len(anchor.stored()) == 2)
    counted.stop()  # nothing new since: no shutdown checkpoint
    assert len(anchor.stored()) == 2 and anchor.pending() == 0

    timed = _sequencer(runtime, checkpoint_seconds=0.1, checkpoint_records=1000)
    timed.start()
    _wait_for(lambda: timed.leading)
    _append(runtime, 1)
    _wait_for(lambda: len(anchor.stored()) == 3)
    _append(runtime, 1)
    timed.stop()  # integrates the last record and signs it, whatever the timer did
    assert anchor.pending() == 0 and runtime.repo.audit_position().pending == 0
    assert [c.number for c in anchor.stored()] == list(range(1, len(anchor.stored()) + 1))
    lines = anchor.file.read_text().splitlines()
    assert lines == [c.line() for c in anchor.stored()]


def _append(rt: Runtime, count: int) -> None:
    with Session(rt.repo.engine) as db:
        for n in range(count):
            append(db, AuditEntry("test", "system", "test.event", str(n)))
        db.commit()


def _wait_for(condition: object, seconds: float = 10) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
