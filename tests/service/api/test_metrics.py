"""``GET /metrics`` (Prometheus text, parsed with prometheus-client's own parser) and the correlation id: what an
issuance, a refusal and an OCSP answer add, the state gauges read at scrape time, no personal data."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api_world import Api, load_pem

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: Api) -> Samples:
    response = api.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= set(got))


def test_an_issuance_counts_its_certificate_decision_lint_signature_and_transactions(api: Api) -> None:
    resident = api.new_resident()
    before = scrape(api)
    response = api.issue(resident)
    assert response.status_code == 201, response.text
    after = scrape(api)
    rule = "P1-CERT"  # the counter issuance rule of the default regime (current-2022) that decided the event

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    labels = {"channel": "rest", "profile": "signature", "rule": rule}
    assert grew("koshin_certificates_total", outcome="issued", **labels) == 1
    assert grew("koshin_certificates_total", outcome="failed") == 0
    assert grew("koshin_policy_decisions_total", operation="cert_issue", outcome="allow") == 1
    assert grew("koshin_lint_duration_seconds_count") == 1
    assert grew("koshin_token_sign_duration_seconds_count") >= 1
    assert grew("koshin_db_transaction_duration_seconds_count", kind="write") >= 3  # event, intent, outcome
    route = {"route": "/v1/certificates", "method": "POST", "status": "201"}
    assert grew("koshin_http_request_duration_seconds_count", **route) == 1


def test_a_refusal_counts_its_problem_type_and_route_template_not_the_path(api: Api) -> None:
    before = scrape(api)
    secret_number = "R-not-a-resident-12345"
    response = api.get(f"/v1/residents/{secret_number}", "municipal_staff")
    assert response.status_code == 404
    text = api.client.get("/metrics").text
    after = scrape(api)
    assert (
        value(after, "koshin_http_problems_total", problem="not-found", status="404")
        - value(before, "koshin_http_problems_total", problem="not-found", status="404")
        == 1
    )
    route = {"route": "/v1/residents/{number}", "method": "GET", "status": "404"}
    assert value(after, "koshin_http_request_duration_seconds_count", **route) >= 1
    assert secret_number not in text  # a label never holds a value from the path


def test_ocsp_get_is_pre_signed_cacheable_and_a_revocation_is_answered_at_once(api: Api) -> None:
    resident = api.new_resident()
    issued = api.issue(resident)
    assert issued.status_code == 201, issued.text
    certificate = load_pem(issued.json()["certificate_pem"])
    chain = x509.load_pem_x509_certificates(api.client.get("/v1/ca/chain").content)
    issuer = next(c for c in chain if c.subject == certificate.issuer)
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
    url = f"/ocsp/signature/{base64.b64encode(request.public_bytes(Encoding.DER)).decode()}"
    labels = {"ca": "signature"}
    before = scrape(api)
    first, second = api.client.get(url), api.client.get(url)
    after = scrape(api)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]  # pre-signed
    assert ocsp.load_der_ocsp_response(first.content).certificate_status is ocsp.OCSPCertStatus.GOOD
    control = first.headers["cache-control"]
    assert control.startswith("max-age=") and int(control.split(",")[0].split("=")[1]) <= 60, control
    assert "public" in control and first.headers["last-modified"] and first.headers["expires"]
    grew = {source: value(after, "koshin_ocsp_responses_total", source=source, **labels)
            - value(before, "koshin_ocsp_responses_total", source=source, **labels)
            for source in ("signed", "cached")}  # fmt: skip
    assert grew == {"signed": 1, "cached": 1}
    serial = issued.json()["serial"]
    revoked = api.post(f"/v1/certificates/{serial}/revoke", "municipal_staff", {"reason": "keyCompromise"})
    assert revoked.status_code == 200, revoked.text
    third = api.client.get(url)  # nothing told the responder: the status it reads changed
    assert ocsp.load_der_ocsp_response(third.content).certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert third.headers["etag"] != first.headers["etag"]


def test_state_gauges_are_read_at_scrape_time(api: Api) -> None:
    samples = scrape(api)
    for ca in ("root", "signature", "user-authentication"):
        age = value(samples, "koshin_crl_age_seconds", ca=ca)
        assert 0 <= age < 86_400, (ca, age)  # published at start-up, well inside its validity
        assert value(samples, "koshin_crl_next_update_seconds", ca=ca) > 0
    records = value(samples, "koshin_audit_records")
    assert records > 0
    assert 0 <= value(samples, "koshin_audit_unanchored_records") <= records


def test_the_correlation_id_is_echoed_or_made(api: Api) -> None:
    offered = "edge-4f1c2a9b-77"
    assert api.client.get("/healthz", headers={"X-Request-ID": offered}).headers["x-request-id"] == offered
    made = api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 36  # a new UUID instead of the caller's text
    assert api.client.get("/healthz").headers["x-request-id"] != made
