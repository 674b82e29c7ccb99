"""Failed authentications, counted per subject (a proofing event, a source address) in the database so that
every worker sees the same count. Each failure is one audited write; rows older than a day are pruned in the
same transaction, so the table holds no more than a day of failures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from service.db.registry_models import AuthFailure
from service.db.repository import Repository

KEEP = timedelta(days=1)


class AuthStore(Repository):
    def record_auth_failure(
        self, kind: str, subjects: Sequence[str], source: str, now: datetime, since: datetime
    ) -> dict[str, int]:
        """Record one failure against each of ``subjects`` and audit it; returns each subject's count of
        failures since ``since`` (this one included)."""
        with self._write() as tx:
            for subject in subjects:
                tx.session.add(AuthFailure(kind=kind, subject=subject, source=source, at=now))
            tx.audit("auth.fail", subjects[0], kind=kind, source=source, subjects=list(subjects))
            tx.session.flush()
            tx.session.execute(delete(AuthFailure).where(col(AuthFailure.at) < now - KEEP))
            return {s: _count(tx.session, s, since) for s in subjects}

    def auth_failures(self, subject: str, since: datetime) -> int:
        with self._read() as session:
            return _count(session, subject, since)

    def oldest_failure(self, subject: str, since: datetime) -> datetime | None:
        with self._read() as session:
            query = select(func.min(AuthFailure.at)).where(AuthFailure.subject == subject, col(AuthFailure.at) >= since)
            found: datetime | None = session.exec(query).one()
            return found


def _count(session: Session, subject: str, since: datetime) -> int:
    query = select(func.count()).select_from(AuthFailure).where(AuthFailure.subject == subject,
                                                                 col(AuthFailure.at) >= since)  # fmt: skip
    return int(session.exec(query).one())
