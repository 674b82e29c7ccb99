"""Reads and writes of a mass incident (``koshin incident``): select the affected certificates by their columns,
then suspend (certificateHold), revoke or release them in batches, each batch one audited transaction.

Every change is conditional on the status it changes from (``issued`` to suspend, on hold to release, issued or
on hold to revoke), so a batch repeated after a crash changes nothing twice and an interrupted incident resumes
by running again: what is done is no longer a candidate. Each audit record names the incident. A revocation and
a release both add one to ``status_changes``, which CRL publication compares (service/db/crl_store.py), and a
release clears ``revoked_at`` and the reason: the certificate is ``issued`` again, as if never held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy import select as core_select

from service.db.models import CertificateRecord
from service.db.repository import Repository

HOLD = "certificateHold"
_T = CertificateRecord.__table__.c  # type: ignore[attr-defined]
_COLUMNS = (_T.id, _T.serial_hex, _T.issuer, _T.crl_shard, _T.status, _T.revocation_reason, _T.profile,
            _T.key_origin, _T.resident_id, _T.card_id, _T.device_id)  # fmt: skip


@dataclass(frozen=True)
class IncidentQuery:
    """Which certificates an incident is about; every given field must match."""

    issuer: str | None = None
    profile: str | None = None
    key_algorithm: str | None = None
    key_origin: str | None = None  # device | station
    device_prefix: str | None = None  # a device batch: device ids starting with this
    issued_from: datetime | None = None  # notBefore on or after
    issued_until: datetime | None = None  # notBefore before
    with_der: bool = False  # also read the DER (a key-property predicate needs the public key)


@dataclass(frozen=True)
class Candidate:
    id: int
    serial_hex: str
    issuer: str
    crl_shard: int
    status: str
    revocation_reason: str | None
    profile: str
    key_origin: str
    resident_id: int | None
    card_id: int | None
    device_id: str | None
    certificate_der: bytes | None


def _state(action: str) -> ColumnElement[bool]:
    """The status ``action`` changes from: issued (suspend), on hold (release), either (revoke)."""
    held = and_(_T.status == "revoked", _T.revocation_reason == HOLD)
    states: dict[str, ColumnElement[bool]] = {"suspend": _T.status == "issued", "release": held,
                                              "revoke": or_(_T.status == "issued", held)}  # fmt: skip
    return states[action]


class IncidentStore(Repository):
    def incident_candidates(self, query: IncidentQuery, action: str, batch: int = 5000) -> Iterator[list[Candidate]]:
        """The certificates ``query`` names that ``action`` would still change, in id order, ``batch`` at a time
        (keyset pagination: each batch is one short read, whatever the table's size)."""
        columns = [*_COLUMNS, _T.certificate_der] if query.with_der else list(_COLUMNS)
        after = 0
        while True:
            statement = core_select(*columns).where(_state(action), _T.id > after, *_conditions(query))
            with self._read() as session:
                rows = list(session.connection().execute(statement.order_by(_T.id).limit(batch)))
            if not rows:
                return
            yield [_candidate(row, query.with_der) for row in rows]
            after = rows[-1][0]

    def change_incident_batch(
        self, incident: str, action: str, candidates: Sequence[Candidate], reason: str, at: datetime
    ) -> list[Candidate]:
        """Apply ``action`` (suspend | revoke | release) to those of ``candidates`` still in the state it
        changes, in one transaction with one audit record each; returns those it changed."""
        ids = [c.id for c in candidates]
        if not ids:
            return []
        with self._write() as tx:
            found = tx.connection.execute(core_select(_T.id).where(_T.id.in_(ids), _state(action)))
            changed = {row[0] for row in found}
            if not changed:
                return []
            values: dict[str, object] = {"status_changes": _T.status_changes + 1}
            if action == "release":
                values |= {"status": "issued", "revoked_at": None, "revocation_reason": None}
            else:
                values |= {"status": "revoked", "revoked_at": at, "revocation_reason": reason}
            tx.connection.execute(
                update(CertificateRecord.__table__).where(_T.id.in_(changed)).values(values)  # type: ignore[attr-defined]
            )
            done = [c for c in candidates if c.id in changed]
            for candidate in done:
                tx.audit(f"certificate.{action}", candidate.serial_hex, reason=reason, incident=incident,
                         before=candidate.revocation_reason or candidate.status)  # fmt: skip
        return done


def _candidate(row: Any, with_der: bool) -> Candidate:
    return Candidate(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                     row[11] if with_der else None)  # fmt: skip


def _conditions(query: IncidentQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    for column, value in (("issuer", query.issuer), ("profile", query.profile),
                          ("key_algorithm", query.key_algorithm), ("key_origin", query.key_origin)):  # fmt: skip
        if value is not None:
            found.append(_T[column] == value)
    if query.device_prefix is not None:
        found.append(_T.device_id.startswith(query.device_prefix, autoescape=True))
    if query.issued_from is not None:
        found.append(_T.not_before >= query.issued_from)
    if query.issued_until is not None:
        found.append(_T.not_before < query.issued_until)
    return found
