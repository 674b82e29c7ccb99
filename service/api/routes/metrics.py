"""``GET /metrics``: the Prometheus text exposition, for a scraper on the operators' network.

Open like ``/healthz``: it names channels, profiles, rules, routes and CA names, never a holder, a serial or a
secret. The state gauges are read from the database at scrape time (a read; nothing is written or signed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.api.deps import RuntimeDep
from service.api.media import answers
from service.observability.metrics import CONTENT_TYPE, exposition
from service.runtime import Runtime

router = APIRouter()


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class ServiceState(Collector):
    """What the database says now: each CA's newest CRL; the audit tree, its pending records and its newest
    checkpoint."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        age = GaugeMetricFamily("koshin_crl_age_seconds", "Seconds since the newest CRL's thisUpdate, per CA.",
                                labels=["ca"])  # fmt: skip
        until = GaugeMetricFamily("koshin_crl_next_update_seconds", "Seconds until the newest CRL's nextUpdate.",
                                  labels=["ca"])  # fmt: skip
        for record in self.rt.ca_records():
            if record.role not in ("root", "issuing"):
                continue
            crl = self.rt.repo.latest_crl(record.name)
            if crl is not None:
                age.add_metric([record.name], (now - _aware(crl.this_update)).total_seconds())
                until.add_metric([record.name], (_aware(crl.next_update) - now).total_seconds())
        yield age
        yield until
        position = self.rt.repo.audit_position()
        anchored = position.last.seq if position.last is not None else 0
        yield GaugeMetricFamily("koshin_audit_records", "Records in the audit log.", value=position.records)
        yield GaugeMetricFamily("koshin_audit_tree_size", "Records integrated into the audit Merkle tree.",
                                value=position.tree.size)  # fmt: skip
        yield GaugeMetricFamily(
            "koshin_audit_pending_records", "Audit records appended but not yet in the tree.", value=position.pending
        )
        oldest = position.oldest_pending
        yield GaugeMetricFamily(
            "koshin_audit_integration_lag_seconds",
            "Age of the oldest audit record not yet in the tree (0 when none waits).",
            value=(now - _aware(oldest)).total_seconds() if oldest is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "koshin_audit_unanchored_records",
            "Audit records not yet covered by a signed checkpoint.",
            value=position.records - anchored,
        )
        if position.last is not None:
            yield GaugeMetricFamily(
                "koshin_audit_checkpoint_age_seconds",
                "Seconds since the newest signed audit checkpoint (the integration lag, in time).",
                value=(now - _aware(position.last.at)).total_seconds(),
            )


@router.get(
    "/metrics", tags=["system"], response_class=Response, responses=answers(CONTENT_TYPE, "Prometheus text exposition")
)
def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text format: request latency, issuance outcomes, policy decisions, problems, lint, token and
    database latency, OCSP responses, CRL age and the audit log's lag behind its checkpoints."""
    return Response(exposition([ServiceState(rt)]), media_type=CONTENT_TYPE)
