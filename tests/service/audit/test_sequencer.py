"""The audit log's write path and its sequencer, on both backends: writers append without a lock, integrators
racing each other still make one dense tree, one process leads at a time and the lead passes on, and a database
written under the old hash chain migrates into the tree with its records (and their signed heads) intact."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime

from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

from service.audit import merkle
from service.audit.checkpoint import record_leaves
from service.audit.integration import integrate_batch, integrate_pending
from service.db.audit_log import GENESIS, verify
from service.db.audit_models import AuditRecord, AuditTree
from service.db.audit_store import AuditStore
from service.db.leadership import Leadership
from service.db.migrate import upgrade
from service.db.repository import make_engine
from service.db.unit import Acting, writing

WRITERS, TRANSACTIONS, PER_TRANSACTION = 4, 40, 3


def _leaves_in_tree_order(session: Session) -> list[AuditRecord]:
    integrated = select(AuditRecord).where(col(AuditRecord.leaf_index).is_not(None))
    return list(session.exec(integrated.order_by(col(AuditRecord.leaf_index))))


def test_concurrent_writers_and_two_integrators_make_one_dense_tree(database_url: str) -> None:
    engine = make_engine(database_url)
    store = AuditStore(engine)
    writing_done = threading.Event()
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(TRANSACTIONS):
                with writing(engine, Acting(f"writer-{worker}", "system")) as tx:
                    for k in range(PER_TRANSACTION):
                        tx.audit("test.event", f"{worker}/{n}/{k}")
        except BaseException as exc:
            failures.append(exc)

    def integrate() -> None:  # two of these, ignoring leadership: the tree row's lock alone must keep one tree
        try:
            while not writing_done.is_set() or store.audit_position().pending:
                if integrate_batch(store, batch=7) is None:
                    writing_done.wait(0.005)
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    integrators = [threading.Thread(target=integrate) for _ in range(2)]
    for thread in writers + integrators:
        thread.start()
    for thread in writers:
        thread.join()
    writing_done.set()
    for thread in integrators:
        thread.join()
    assert failures == []

    total = WRITERS * TRANSACTIONS * PER_TRANSACTION
    with Session(engine) as session:
        leaves = _leaves_in_tree_order(session)
        report = verify(session)
        tree = session.get(AuditTree, 1)
    assert [r.leaf_index for r in leaves] == list(range(total))  # no gap, no leaf placed twice
    assert report.intact and report.records == total and report.pending == 0, report
    assert tree is not None and tree.size == total
    assert tree.root == merkle.root(record_leaves([r.hash for r in leaves])).hex()  # the frontier carried right
    for worker in range(WRITERS):  # each writer's records joined the tree in the order it wrote them
        mine = [r.leaf_index or 0 for r in leaves if r.actor == f"writer-{worker}"]
        assert mine == sorted(mine) and len(mine) == TRANSACTIONS * PER_TRANSACTION
    engine.dispose()


def test_one_leader_at_a_time_and_the_lead_passes_when_it_goes(database_url: str) -> None:
    first_engine, second_engine = make_engine(database_url), create_engine(database_url)
    first, second = Leadership(first_engine), Leadership(second_engine)
    assert first.try_lead() and first.leads()
    assert not second.try_lead() and not second.leads()
    first.resign()
    assert not first.leads() and second.try_lead()
    assert not first.try_lead()
    if database_url.startswith("postgresql"):  # the leader's session dies (a killed node): the lock goes with it
        with first_engine.connect() as admin:
            killed = admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )).scalars().all()  # fmt: skip
            admin.commit()
        assert killed == [True]
        assert not second.leads()
        assert first.try_lead()
        first.resign()
    else:
        second.resign()
    first_engine.dispose()
    second_engine.dispose()


def _chain_hash(fields: dict[str, object]) -> str:
    """The hash rule of the chain before the tree (migration 0008 and earlier)."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_hash_chain_database_migrates_into_the_tree(database_url: str) -> None:
    engine = create_engine(database_url)
    upgrade(engine, "0008")
    previous, moment, hashes = GENESIS, datetime(2026, 11, 1, tzinfo=UTC), []
    with engine.begin() as db:
        for seq in range(1, 12):
            fields = {"seq": seq, "at": moment.isoformat(), "actor": "cli:op", "role": "ca_operator",
                      "action": "legacy.event", "object": str(seq), "rule_id": None, "decision": None,
                      "details": "{}", "prev_hash": previous}  # fmt: skip
            previous = _chain_hash(fields)
            hashes.append(previous)
            db.execute(text("INSERT INTO audit_record (seq, at, actor, role, action, object, details, prev_hash, hash) "
                            "VALUES (:seq, :at, :actor, :role, :action, :object, :details, :prev_hash, :hash)"),
                       {**fields, "at": moment, "hash": previous})  # fmt: skip
        db.execute(text("UPDATE audit_head SET seq = 11, hash = :hash"), {"hash": previous})
    engine.dispose()

    engine = make_engine(database_url)  # migrates to head
    store = AuditStore(engine)
    with Session(engine) as session:
        report = verify(session)
        assert report.intact and report.records == 11 and report.pending == 0, report
        assert [r.hash for r in _leaves_in_tree_order(session)] == hashes  # leaf seq - 1, as checkpoints signed
    with writing(engine, Acting()) as tx:
        tx.audit("new.event", "after the migration")
    assert integrate_pending(store) == 1  # the first integration computes the edge from the old leaves
    with Session(engine) as session:
        tree, report = session.get(AuditTree, 1), verify(session)
        leaves = _leaves_in_tree_order(session)
    assert report.intact and report.records == 12 and tree is not None and tree.size == 12
    assert tree.root == merkle.root(record_leaves([r.hash for r in leaves])).hex()
    assert (leaves[-1].seq or 0) > 11  # the sequence continues after the migrated numbers
    engine.dispose()
