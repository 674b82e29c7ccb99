"""The service's Prometheus metrics (prometheus-client), defined once, and their exposition.

Counters and histograms only: with ``koshin serve --workers N`` each worker is a process of its own, and
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``koshin serve`` before the workers
start) sums them over the workers at scrape time. Gauges of state (CRL age, audit checkpoint lag) are not kept
in a process at all: the scraping worker reads them from the database when asked (service/api/routes/metrics.py),
so every worker answers the same.

No label carries personal data: channels, profiles, rule ids, outcomes, route templates and CA names only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.registry import REGISTRY, Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUEST_SECONDS = Histogram(
    "koshin_http_request_duration_seconds", "HTTP requests by route template, method and status class.",
    ["route", "method", "status"],
)  # fmt: skip
CERTIFICATES = Counter(
    "koshin_certificates", "Certificates through the issuance pipeline by channel, profile, policy rule and outcome "
    "(issued; withheld: signed but revoked after a failure; failed: never signed).",
    ["channel", "profile", "rule", "outcome"],
)  # fmt: skip
DECISIONS = Counter(
    "koshin_policy_decisions", "Assurance-level policy decisions by operation, channel, rule and outcome.",
    ["operation", "channel", "rule", "outcome"],
)  # fmt: skip
PROBLEMS = Counter(
    "koshin_http_problems", "Requests answered with an RFC 9457 problem document, by problem type and status.",
    ["problem", "status"],
)  # fmt: skip
LINT_SECONDS = Histogram("koshin_lint_duration_seconds", "pkilint over one lint copy.", buckets=_FAST)
SIGN_SECONDS = Histogram("koshin_token_sign_duration_seconds", "One signature on the token.", buckets=_FAST)
DB_SECONDS = Histogram(
    "koshin_db_transaction_duration_seconds", "One database unit of work (a write: wait for the writer, work, commit).",
    ["kind"], buckets=_FAST,
)  # fmt: skip
AUDIT_INTEGRATION_SECONDS = Histogram(
    "koshin_audit_integration_delay_seconds",
    "From a record's append to its place in the audit tree (observed by the sequencer, per record).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0),
)
OCSP_RESPONSES = Counter(
    "koshin_ocsp_responses", "OCSP responses by CA and how they were made "
    "(signed: on the token for this request; cached: a pre-signed response).",
    ["ca", "source"],
)  # fmt: skip


def share_between_workers(directory: Path) -> None:
    """Multiprocess mode for ``koshin serve --workers N``: the workers write their samples under ``directory``
    (emptied first: a killed server's files would count its dead workers' samples forever). Call before the
    workers start; they inherit the variable."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROCESS_ENV] = str(directory)


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    started = perf_counter()
    try:
        yield
    finally:
        (histogram.labels(**labels) if labels else histogram).observe(perf_counter() - started)


def observe_sign(seconds: float) -> None:
    SIGN_SECONDS.observe(seconds)


def exposition(state: Iterable[Collector] = ()) -> bytes:
    """The text exposition: this process's metrics (every worker's, in multiprocess mode), then the state
    collectors, read now."""
    if os.environ.get(MULTIPROCESS_ENV):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        own = generate_latest(workers)
    else:
        own = generate_latest(REGISTRY)
    now = CollectorRegistry()
    for collector in state:
        now.register(collector)
    return own + generate_latest(now)
