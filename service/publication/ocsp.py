"""The OCSP responder of a running installation: one signer per issuing CA (its key on the token) and the status
of a serial read from the certificate rows, so a revocation is answered as soon as it commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from cryptography import x509

from ca.crl import reason_flag
from ca.hierarchy import signing_key
from ca.ocsp import CertStatusKind, OcspIssuer, OcspResponder, StatusAnswer
from hsm import TokenSession
from service.db.models import CaRecord
from service.db.repository import Repository, utc

log = logging.getLogger("koshin.publication")


def status_lookup(store: Repository) -> Callable[[str, int], StatusAnswer]:
    """Issued: good; revoked: revoked with its time and reason; anything else (unknown, pending, failed, another
    issuer's): unknown."""

    def status(issuer: str, serial: int) -> StatusAnswer:
        record = store.certificate_status(serial)
        if record is None or record.issuer != issuer or record.status not in ("issued", "revoked"):
            return StatusAnswer(CertStatusKind.UNKNOWN)
        if record.status == "revoked":
            return StatusAnswer(
                CertStatusKind.REVOKED,
                revoked_at=utc(record.revoked_at or record.created_at),
                reason=reason_flag(record.revocation_reason or "unspecified"),
            )
        return StatusAnswer(CertStatusKind.GOOD)

    return status


def ocsp_responder(store: Repository, session: TokenSession, records: Sequence[CaRecord]) -> OcspResponder:
    """The responder over every issuing CA of ``records``, each answered by its OCSP signer."""
    issuers = []
    for record in (r for r in records if r.role == "issuing"):
        signer = next(r for r in records if r.role == "ocsp" and r.name == record.name)
        issuers.append(
            OcspIssuer(
                name=record.name,
                ca_certificate=x509.load_der_x509_certificate(record.certificate_der),
                responder_certificate=x509.load_der_x509_certificate(signer.certificate_der),
                responder_key=signing_key(session, signer.key_label),
            )
        )
    return OcspResponder(issuers, status_lookup(store))


class OcspRefresher:
    """Signs the worker's pre-signed OCSP answers again before half their validity ends (``OcspResponder.refresh``),
    every ``interval`` seconds on a daemon thread, so a relying party never waits for the token: started and
    stopped with the service (service/api/app.py), never inside a request."""

    def __init__(self, responder: OcspResponder, interval: float = 60.0) -> None:
        self.responder, self.interval = responder, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="koshin-ocsp-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        ahead = timedelta(seconds=5 * self.interval)
        while not self._stop.wait(self.interval):
            try:
                self.responder.refresh(ahead=ahead)
            except Exception:  # a failing token or database must not end the thread
                log.exception("OCSP: signing ahead failed; the answers are signed on demand meanwhile")
