"""Metrics and logs of a real `koshin serve --workers 2`: the exposition sums both workers, a killed server's
samples do not outlive it, and the log is JSON lines with the correlation id and without personal data."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_softhsm
from tests.support.served import RESIDENT, Served, holder_csr_pem

pytestmark = pytest.mark.hsm  # runs `koshin` on the embedded SoftHSM
ISSUED = 6


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_softhsm()
    served = Served.embedded(tmp_path_factory.mktemp("observed"))
    served.setup()
    served.start()
    try:
        yield served
    finally:
        served.stop()


def issued_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "koshin_certificates_total"
        and sample.labels.get("channel") == "rest"
        and sample.labels.get("outcome") == "issued"
    )


def json_lines(served: Served) -> list[dict[str, object]]:
    lines = served.log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_the_exposition_sums_both_workers_and_a_restart_starts_clean(served: Served) -> None:
    csr = holder_csr_pem()
    with served.client() as http, ThreadPoolExecutor(4) as pool:
        serials = list(pool.map(lambda _: served.issue(http, csr), range(ISSUED)))
    assert len(set(serials)) == ISSUED
    # Every scrape lands on either worker and must see all six, not that worker's share.
    assert [issued_count(served.base) for _ in range(6)] == [ISSUED] * 6
    served.kill()
    served.start()
    assert issued_count(served.base) == 0  # the killed workers' sample files were cleared at start-up


def test_the_log_is_json_lines_with_the_correlation_id_and_no_personal_data(served: Served) -> None:
    offered = "edge-7d1e5c0a-42"
    with served.client() as http:
        assert http.get(f"/v1/residents/{RESIDENT}", headers={"X-Request-ID": offered}).status_code == 200
    deadline = time.monotonic() + 10
    access: list[dict[str, object]] = []
    while not access and time.monotonic() < deadline:  # the access line is written once the answer went out
        time.sleep(0.1)
        events = json_lines(served)
        access = [e for e in events if e.get("logger") == "koshin.access" and e.get("correlation_id") == offered]
    assert len(access) == 1, served.log.read_text(errors="replace")[-2000:]
    assert access[0]["route"] == "/v1/residents/{number}"
    assert access[0]["status"] == 200
    text = served.log.read_text(encoding="utf-8", errors="replace")
    assert RESIDENT not in text  # the resident number was in the path, never in the log
    for secret in served.tokens.values():
        assert secret not in text


def test_a_revocation_is_answered_revoked_by_every_worker_at_once(served: Served) -> None:
    """Both workers keep pre-signed OCSP answers of their own; neither is told of the revocation, and neither
    answers "good" after it, because each reads the status for every request."""
    with served.client() as http:
        serial = served.issue(http, holder_csr_pem())
        certificate = x509.load_pem_x509_certificate(http.get(f"/v1/certificates/{serial}").json()["certificate_pem"]
                                                     .encode())  # fmt: skip
        chain = x509.load_pem_x509_certificates(http.get("/v1/ca/chain").content)
        issuer = next(c for c in chain if c.subject == certificate.issuer)
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
        url = f"/ocsp/signature/{base64.b64encode(request.public_bytes(Encoding.DER)).decode()}"

        def statuses(count: int) -> set[ocsp.OCSPCertStatus]:
            with ThreadPoolExecutor(4) as pool:  # concurrent, so both workers answer
                answers = list(pool.map(lambda _: httpx.get(served.base + url, timeout=30).content, range(count)))
            return {ocsp.load_der_ocsp_response(a).certificate_status for a in answers}

        assert statuses(16) == {ocsp.OCSPCertStatus.GOOD}
        revoked = http.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"})
        assert revoked.status_code == 200, revoked.text
        assert statuses(16) == {ocsp.OCSPCertStatus.REVOKED}
