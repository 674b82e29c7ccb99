"""``create_app(settings)``: the FastAPI application over one runtime (token session, database, CA)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import openapi, problems
from service.api.limits import BodyLimit
from service.api.observe import Observe
from service.api.routes import cards, cmp, est, issuance, metrics, phones, publication, registry, system
from service.api.source import PeerSource
from service.audit.sequencer import start_sequencer
from service.flows.reconciliation import reconcile
from service.provisioning import provision, warm_up
from service.publication.crl import BackgroundPublisher
from service.publication.ocsp import OcspRefresher
from service.runtime import Runtime, open_runtime
from service.settings import Settings

log = logging.getLogger("koshin.api")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Settings are read here (not at import); tests may pass an open runtime."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or open_runtime(settings, create=settings.embedded)
        provision(rt)  # start-up only: nothing is provisioned inside a request
        warm_up(rt)
        for record in reconcile(rt):
            log.warning("reconciled pending intent %s (%s): recorded revoked", record.serial_hex, record.profile)
        publisher = BackgroundPublisher(rt.crl_publication, settings.crl_coalesce_seconds, settings.crl_check_seconds,
                                        maintenance=lambda: reconcile(rt))  # fmt: skip
        previous, rt.publisher = rt.publisher, publisher  # a test's second app on one runtime gives it back
        publisher.start()
        sequencer = start_sequencer(rt)  # the audit tree and its signed checkpoints, on the elected process
        refresher = OcspRefresher(rt.ocsp)  # pre-signed OCSP answers signed again before they are due
        refresher.start()
        app.state.runtime = rt
        try:
            yield
        finally:
            publisher.stop()  # publishes what is still marked
            rt.publisher = previous
            sequencer.stop()
            refresher.stop()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="koshin",
        summary="JPKI-style certificate issuance and renewal with an assurance-level policy",
        version="0.2.0",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # operationIds a generated client names methods by
    )
    problems.install(app)
    openapi.install(app)
    for module in (system, metrics, registry, issuance, cards, phones, publication, cmp, est):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(PeerSource, behind_terminator=settings.behind_tls)
    app.add_middleware(Observe)  # added last: outermost, so it sees every answer, the body limit's 413 too
    return app
