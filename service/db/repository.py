"""Reads and writes of the CA side: CA records, holder certificates, revocations.

A revocation (``mark_revoked``, and the prebuilt statements of service/db/issuance_store.py) and a release
from hold (``release_hold``) each add one to ``certificate.status_changes``: CRL publication compares that sum
with the one its newest CRL covered (service/db/crl_store.py), so a change that leaves the number of revoked
certificates as it was (a release and a revocation) still makes the CRL due.

Every write is one transaction (``service.db.unit.writing``) that appends its audit records, attributed to the
repository's actor (``Repository.acting(...)`` binds one; operator commands act as ``cli:<user>``/``ca_operator``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, bindparam, event, make_url, text
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from ca.crl import RevokedEntry, reason_flag
from ca.hierarchy import CaMaterial
from service.db.migrate import upgrade
from service.db.models import CaRecord, CertificateRecord
from service.db.unit import Acting, WriteTx, configure_sqlite, reading, writing
from service.errors import CertificateNotFound, InputRefused, RevocationRefused

__all__ = ["Acting", "CertificateStatus", "Repository", "make_engine", "serial_hex", "utc"]


@dataclass(frozen=True)
class CertificateStatus:
    issuer: str
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    created_at: datetime


_CERTIFICATES = CertificateRecord.__table__  # type: ignore[attr-defined]
_STATUS_QUERY = core_select(
    _CERTIFICATES.c.issuer,
    _CERTIFICATES.c.status,
    _CERTIFICATES.c.revoked_at,
    _CERTIFICATES.c.revocation_reason,
    _CERTIFICATES.c.created_at,
).where(_CERTIFICATES.c.serial_hex == bindparam("serial"))


def make_engine(url: str) -> Engine:
    """Engine with the schema created. A SQLite file is created owner-only (mode 0600)."""
    from sqlmodel import create_engine

    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    database = make_url(url).database
    file_backed = url.startswith("sqlite") and bool(database) and database != ":memory:"
    if file_backed:
        os.close(os.open(str(database), os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url, connect_args=connect_args)
    if url.startswith("sqlite"):
        configure_sqlite(engine)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    upgrade(engine)
    return engine


def _refuse_nul(_conn: object, _cursor: object, _statement: str, parameters: object, *_: object) -> None:
    """PostgreSQL refuses NUL in text (a DataError mid-request), SQLite stores it: refuse it on both, before the
    statement runs, wherever it came from (a path, a Basic user name, a CMP senderKID)."""
    if any(isinstance(v, str) and "\x00" in v for v in _values(parameters)):
        raise InputRefused("text with a NUL character (U+0000) is refused")


def _values(parameters: object) -> Iterator[object]:
    """Every bound value: a dict or a sequence of them (executemany), or a sequence of values."""
    if isinstance(parameters, dict):
        yield from parameters.values()
    elif isinstance(parameters, list | tuple):
        for item in parameters:
            if isinstance(item, dict | list | tuple):
                yield from _values(item)
            else:
                yield item


def utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every stored datetime is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def serial_hex(serial: int) -> str:
    return f"{serial:040x}"


class Repository:
    def __init__(self, engine: Engine, acting: Acting | None = None) -> None:
        self.engine = engine
        self.who = acting or Acting()

    def acting(self, actor: str, role: str, rule_id: str | None = None, decision: str | None = None) -> Self:
        return self.as_(Acting(actor, role, rule_id, decision))

    def as_(self, who: Acting) -> Self:
        return type(self)(self.engine, who)

    @contextmanager
    def _write(self) -> Iterator[WriteTx]:
        with writing(self.engine, self.who) as tx:
            yield tx

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def ping(self) -> None:
        """One round trip to the database (GET /healthz)."""
        with reading(self.engine) as session:
            session.connection().execute(text("SELECT 1"))

    # -- CA hierarchy ------------------------------------------------------------------------------------
    def ca_records(self) -> list[CaRecord]:
        with self._read() as session:
            return list(session.exec(select(CaRecord).order_by(col(CaRecord.id))))

    def save_ca_materials(self, materials: Sequence[CaMaterial]) -> None:
        now = datetime.now(UTC)
        with self._write() as tx:
            for item in materials:
                tx.session.add(
                    CaRecord(
                        name=item.name,
                        role=item.role,
                        key_label=item.key_label,
                        key_uri=item.key_uri,
                        serial_hex=serial_hex(item.certificate.serial_number),
                        certificate_der=item.certificate.public_bytes(Encoding.DER),
                        not_after=item.certificate.not_valid_after_utc,
                        created_at=now,
                    )
                )
                tx.audit("ca.create", f"{item.role}:{item.name}", key=item.key_uri)

    # -- certificates ------------------------------------------------------------------------------------
    def certificate(self, serial: int) -> CertificateRecord:
        with self._read() as session:
            return by_serial(session, serial)

    def certificate_status(self, serial: int) -> CertificateStatus | None:
        """What OCSP needs about one serial, or None: one indexed Core query, no ORM session (the ORM path
        cost about 0.6 ms per OCSP response, more than the token's signature)."""
        with self.engine.connect() as connection:
            row = connection.execute(_STATUS_QUERY, {"serial": serial_hex(serial)}).first()
        return None if row is None else CertificateStatus(*row)

    def certificates(self, status: str | None = None, profile: str | None = None) -> list[CertificateRecord]:
        with self._read() as session:
            query = select(CertificateRecord).order_by(col(CertificateRecord.id))
            if status is not None:
                query = query.where(CertificateRecord.status == status)
            if profile is not None:
                query = query.where(CertificateRecord.profile == profile)
            return list(session.exec(query))

    def certificate_by_der(self, der: bytes) -> CertificateRecord | None:
        with self._read() as session:
            return session.exec(select(CertificateRecord).where(CertificateRecord.certificate_der == der)).first()

    def revoke(self, serial: int, reason: str, at: datetime) -> CertificateRecord:
        """Revoke one issued certificate (one audited transaction); RevocationRefused in any other state."""
        reason_flag(reason)  # unknown names fail before anything changes
        with self._write() as tx:
            record = by_serial(tx.session, serial)
            if record.status == "revoked":
                raise RevocationRefused(f"certificate {record.serial_hex} is already revoked")
            if record.status != "issued":
                raise RevocationRefused(f"certificate {record.serial_hex} was never issued ({record.status})")
            mark_revoked(tx, record, reason, at)
            return record

    def revoke_many(self, serials: Sequence[int], reason: str, at: datetime) -> list[CertificateRecord]:
        """Revoke every one of ``serials`` that is still issued, in one audited transaction; the others (revoked
        meanwhile, never issued) are left as they are. Returns those it revoked."""
        reason_flag(reason)
        done: list[CertificateRecord] = []
        with self._write() as tx:
            for serial in serials:
                record = tx.session.exec(
                    select(CertificateRecord).where(CertificateRecord.serial_hex == serial_hex(serial))
                ).first()
                if record is not None and record.status == "issued":
                    mark_revoked(tx, record, reason, at)
                    done.append(record)
        return done

    def release_hold(self, serial: int, at: datetime, **details: object) -> CertificateRecord:
        """Release a certificate from hold (revoked, reason certificateHold) back to ``issued``, in one audited
        transaction; RevocationRefused in any other state. The CRLs of its shard and its issuer become due:
        hand the issuer to the CRL publisher after the commit, as after a revocation."""
        with self._write() as tx:
            record = by_serial(tx.session, serial)
            if record.status != "revoked" or record.revocation_reason != HOLD_REASON:
                raise RevocationRefused(f"certificate {record.serial_hex} is not on hold ({record.status}, "
                                        f"{record.revocation_reason})")  # fmt: skip
            mark_released(tx, record, at, **details)
            return record

    def revoked_entries(self, issuer: str) -> list[RevokedEntry]:
        """Every CRL entry of ``issuer`` as a list (small issuers and tests; CRL publication streams them)."""
        with self._read() as session:
            return revoked_entries(session, issuer)


HOLD_REASON = "certificateHold"


def by_serial(session: Session, serial: int) -> CertificateRecord:
    record = session.exec(select(CertificateRecord).where(CertificateRecord.serial_hex == serial_hex(serial))).first()
    if record is None:
        raise CertificateNotFound(f"no certificate with serial {serial_hex(serial)}")
    return record


def mark_revoked(tx: WriteTx, record: CertificateRecord, reason: str, at: datetime, **details: object) -> None:
    record.status, record.revoked_at, record.revocation_reason = "revoked", at, reason
    record.status_changes += 1
    tx.session.add(record)
    tx.audit("certificate.revoke", record.serial_hex, reason=reason, **details)


def mark_released(tx: WriteTx, record: CertificateRecord, at: datetime, **details: object) -> None:
    """What a release from hold sets: status ``issued``, no revocation time or reason, one more status change
    (without it the CRL would look up to date and keep listing the certificate)."""
    record.status, record.revoked_at, record.revocation_reason = "issued", None, None
    record.status_changes += 1
    tx.session.add(record)
    tx.audit("certificate.release", record.serial_hex, released_at=at, **details)


def revoked_entries(session: Session, issuer: str) -> list[RevokedEntry]:
    rows = session.exec(
        select(CertificateRecord.serial_hex, CertificateRecord.revoked_at, CertificateRecord.created_at,
               CertificateRecord.revocation_reason)
        .where(CertificateRecord.issuer == issuer, CertificateRecord.status == "revoked")
    )  # fmt: skip
    return [
        RevokedEntry(
            serial=int(serial, 16),
            revoked_at=utc(revoked_at or created_at),
            reason=reason_flag(reason or "unspecified"),
        )
        for serial, revoked_at, created_at, reason in rows
    ]
