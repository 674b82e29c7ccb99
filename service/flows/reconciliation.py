"""Reconciliation of intents a crash left ``pending``.

The pipeline records a certificate's intent before the token signs and its outcome after. A process that dies
in between leaves the intent ``pending``: the certificate may have been signed (the token may have answered
just before the process died), and nothing can tell any more. As Boulder treats a serial it recorded before
signing, koshin treats such an intent as possibly issued and never delivered: it is recorded **revoked** with
reason **cessationOfOperation** (RFC 5280: the certificate is no longer needed for its purpose; it is neither a
key compromise nor a supersession), so the next CRL lists the serial and OCSP answers ``revoked`` rather than
``unknown``. Its authorisation stays spent. Each one is audited (``certificate.revoke`` with
``reconciled: true``).

An intent is reconciled once it is older than ``KOSHIN_RECONCILE_GRACE_SECONDS`` (default 300: a live request
holds one for a token signature), at start-up, at every periodic check of a running service, and by
``koshin ca reconcile``. If a slow request's intent is reconciled anyway, its outcome transaction finds it no
longer pending and the request fails with nothing delivered (IssuanceInterrupted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.db.models import CertificateRecord
from service.db.unit import Acting
from service.runtime import Runtime

RECONCILER = Acting("reconciliation", "system")


def reconcile(rt: Runtime, grace: timedelta | None = None) -> list[CertificateRecord]:
    """Resolve every pending intent older than ``grace`` (default: the settings'); returns those resolved."""
    grace = grace if grace is not None else timedelta(seconds=rt.settings.reconcile_grace_seconds)
    now = datetime.now(UTC).replace(microsecond=0)
    found = rt.repo.as_(RECONCILER).reconcile_pending(now - grace, now)
    if found:
        rt.crl_publisher().revoked({r.issuer for r in found})
    return found
