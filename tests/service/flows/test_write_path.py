"""The write path under concurrency and crashes, against `koshin serve --workers 2`, on SQLite and PostgreSQL.

- 44 revocations at once: the CRLs published for them are few (coalesced), numbered uniquely and increasingly in
  publication order, their thisUpdate never goes back, the last lists every revoked serial, and ``openssl crl
  -CAfile`` verifies it.
- ``kill -9`` of the whole server while a bounded issuance loop runs: intents left ``pending`` are not touched by
  ``koshin ca reconcile`` within the grace period, and are resolved by the next start-up (grace 0 here): no
  ``pending`` row remains, every spent proofing event has its certificate rows, ``koshin audit verify`` passes,
  ``openssl ocsp`` answers ``revoked`` for the reconciled serials and the CRL lists them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.pgserver import PgServer
from tests.conftest import require_softhsm
from tests.support.crl_wait import crl_number, wait_for_crl
from tests.support.helpers import openssl, run
from tests.support.served import EVIDENCE, RESIDENT, Served, holder_csr_pem

pytestmark = pytest.mark.hsm
REVOCATIONS = 44
KILL_ATTEMPTS = 12  # a kill lands between intent and outcome (a token signature, ~1 ms) by chance


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_softhsm()
    url = None
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create_database(f"wp_{uuid.uuid4().hex[:10]}")
    served = Served.embedded(tmp_path_factory.mktemp(f"write-path-{request.param}"), url,
                             KOSHIN_CRL_COALESCE_SECONDS="1")  # fmt: skip
    served.setup()
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _issue_many(served: Served, count: int) -> list[str]:
    csr = holder_csr_pem()
    with served.client() as http, ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda _: served.issue(http, csr), range(count)))


def _fetch(served: Served, ca: str) -> bytes:
    response = httpx.get(f"{served.base}/crl/{ca}.crl", timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def _pem(path: Path, *der: bytes) -> Path:
    path.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM) for d in der))
    return path


def test_concurrent_revocations_publish_few_increasing_crls(served: Served, tmp_path: Path) -> None:
    serials = _issue_many(served, REVOCATIONS)
    complete = "SELECT COALESCE(MAX(number), 0) FROM crl WHERE issuer = ? AND shard IS NULL"  # not the shards
    (before,) = served.rows(complete, ["signature"])[0]

    def revoke(serial: str) -> int:
        with served.client() as http:
            return http.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}).status_code

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(revoke, serials)) == [200] * REVOCATIONS
    final = wait_for_crl(lambda: _fetch(served, "signature"), {int(s, 16) for s in serials})

    published = served.rows("SELECT id, number, this_update, entries, crl_der FROM crl "
                            "WHERE issuer = ? AND shard IS NULL ORDER BY id", ["signature"])  # fmt: skip
    numbers = [row[1] for row in published]
    assert numbers == sorted(set(numbers)), numbers  # unique, and increasing in the order they were stored
    by_number = sorted(published, key=lambda row: row[1])
    updates = [row[2] if isinstance(row[2], datetime) else datetime.fromisoformat(str(row[2])) for row in by_number]
    assert updates == sorted(updates)  # thisUpdate never goes back as the number grows
    burst = [row for row in published if row[1] > before]
    assert 1 <= len(burst) <= REVOCATIONS // 4, f"{len(burst)} CRLs for {REVOCATIONS} revocations: not coalesced"
    print(f"{REVOCATIONS} concurrent revocations -> {len(burst)} CRLs, numbers {[r[1] for r in burst]}")
    assert crl_number(final) == max(numbers) and by_number[-1][3] >= REVOCATIONS

    ca_der = httpx.get(f"{served.base}/ca/signature.cer", timeout=10).content
    root_der = httpx.get(f"{served.base}/ca/root.cer", timeout=10).content
    bundle = _pem(tmp_path / "bundle.pem", root_der, ca_der)
    issuer = x509.load_der_x509_certificate(ca_der)
    for row in burst:
        crl = x509.load_der_x509_crl(bytes(row[4]))
        assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        assert crl_number(crl) == row[1]
    der = tmp_path / "final.crl"
    der.write_bytes(final.public_bytes(Encoding.DER))
    checked = run([openssl(), "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(bundle), "-noout"])
    assert checked.returncode == 0 and "verify OK" in checked.stdout + checked.stderr, checked.stderr


def _issuance_loop(served: Served, stop: threading.Event, bound: int) -> None:
    csr = holder_csr_pem()
    with served.client() as http:
        for _ in range(bound):
            if stop.is_set():
                return
            try:
                served.issue(http, csr)
            except (httpx.HTTPError, AssertionError):
                return  # the server was killed under this request


def _kill_mid_issuance(served: Served) -> list[str]:
    """Kill the server while six clients issue; restart it until a kill leaves intents pending. Their serials."""
    for _attempt in range(KILL_ATTEMPTS):
        (start,) = served.rows("SELECT COUNT(*) FROM certificate")[0]
        stop = threading.Event()
        clients = [threading.Thread(target=_issuance_loop, args=(served, stop, 200)) for _ in range(6)]
        for client in clients:
            client.start()
        for _ in range(600):  # at least 20 certificates in, then kill
            if served.rows("SELECT COUNT(*) FROM certificate")[0][0] >= start + 20:
                break
            threading.Event().wait(0.05)
        served.kill()
        stop.set()
        for client in clients:
            client.join(60)
        pending = [row[0] for row in served.rows("SELECT serial_hex FROM certificate WHERE status = 'pending'")]
        if pending:
            return pending
        served.start()
    raise AssertionError(f"{KILL_ATTEMPTS} kills left no intent pending: the crash test proved nothing")


def test_kill_9_mid_issuance_is_reconciled_at_start_up(served: Served, tmp_path: Path) -> None:
    pending = _kill_mid_issuance(served)
    print(f"kill -9 left {len(pending)} intents pending")
    unspent = served.rows(
        "SELECT e.id FROM proofing_event e WHERE e.used_at IS NOT NULL AND e.operation = 'cert_issue' AND NOT EXISTS "
        "(SELECT 1 FROM certificate c WHERE c.proofing_event_id = e.id)"
    )
    assert unspent == []  # spend and intent commit together: a spent event always has its rows

    fresh = json.loads(served.cli.ok("ca", "reconcile", "--json"))
    assert fresh == []  # within the grace period an intent may belong to a live request: left alone
    served.start(KOSHIN_RECONCILE_GRACE_SECONDS="0")  # the operator knows nothing else serves this database

    assert served.rows("SELECT serial_hex FROM certificate WHERE status = 'pending'") == []
    resolved = served.rows(
        "SELECT serial_hex, status, revocation_reason, proofing_event_id FROM certificate WHERE serial_hex IN "  # noqa: S608
        f"({', '.join('?' * len(pending))})",
        pending,
    )
    assert sorted(r[0] for r in resolved) == sorted(pending)
    assert {(r[1], r[2]) for r in resolved} == {("revoked", "cessationOfOperation")}
    for _serial, _, _, event_id in resolved:  # the authorisation stays spent
        assert served.rows("SELECT used_at FROM proofing_event WHERE id = ?", [event_id])[0][0] is not None
    assert "audit log intact" in served.cli.ok("audit", "verify")

    ca_der = httpx.get(f"{served.base}/ca/signature.cer", timeout=10).content
    root_der = httpx.get(f"{served.base}/ca/root.cer", timeout=10).content
    issuer, root = _pem(tmp_path / "issuer.pem", ca_der), _pem(tmp_path / "root.pem", root_der)
    for serial in pending[:3]:
        answer = run([openssl(), "ocsp", "-issuer", str(issuer), "-serial", f"0x{serial}", "-url",
                      f"{served.base}/ocsp/signature", "-CAfile", str(root), "-verify_other", str(issuer)],
                     timeout=30)  # fmt: skip
        text = answer.stdout + answer.stderr
        assert answer.returncode == 0 and "Response verify OK" in text and f"0x{serial}: revoked" in text, text
    wait_for_crl(lambda: _fetch(served, "signature"), {int(s, 16) for s in pending})
    assert "Traceback" not in served.log.read_text(errors="replace")


def test_a_station_operator_runs_a_batch_file_against_the_live_database(served: Served, tmp_path: Path) -> None:
    """``koshin ca issue-cards``: card requests made at the counter (events, cards, station CSRs) issued in one
    batch by the command, while the service runs on the same database; a bad line fails alone."""
    lines = []
    with served.client() as http:
        for _ in range(2):
            card = f"B{uuid.uuid4().hex[:10].upper()}"
            added = http.post(f"/v1/residents/{RESIDENT}/cards", json={"number": card, "issued_on": "2026-12-01"})
            assert added.status_code == 201, added.text
            event = http.post(
                "/v1/proofing-events",
                json={
                    "resident_number": RESIDENT,
                    "operation": "card_issue",
                    "channel": "counter_in_person",
                    "evidence": EVIDENCE,
                },
            )
            assert event.status_code == 201, event.text
            lines.append(json.dumps({"resident_number": RESIDENT, "proofing_event_id": event.json()["id"],
                                     "card_number": card, "signature_csr_pem": holder_csr_pem(),
                                     "user_authentication_csr_pem": holder_csr_pem()}))  # fmt: skip
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join([lines[0], '{"resident_number": 1}', lines[1]]) + "\n", encoding="utf-8")
    result = served.cli("ca", "issue-cards", str(requests), "--batch", "2")
    assert result.returncode == 1, result.stdout + result.stderr  # one request failed
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]  # the progress bar goes to stderr
    assert [(o["line"], o["status"]) for o in outcomes] == [(1, 201), (2, 422), (3, 201)]
    assert "2 card requests issued, 1 failed" in result.stderr
    for outcome in (outcomes[0], outcomes[2]):
        [(status,)] = served.rows("SELECT status FROM certificate WHERE serial_hex = ?", [outcome["signature"]])
        assert status == "issued"
