"""Synthetic certificate rows for the benchmarks (``koshin bench incident``): copies of one issued certificate's
row under new random serials, in bulk. A throwaway bench home only; each chunk is one audited transaction, as
every write is. The copies keep the template's DER (their serials are not in it): CRLs and OCSP read the rows,
and the real certificates issued beside them are what a client verifies."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlmodel import select

from service.db.models import CertificateRecord
from service.db.repository import Repository, serial_hex

_TABLE = CertificateRecord.__table__  # type: ignore[attr-defined]


class SyntheticStore(Repository):
    def clone_certificates(self, template_serial: str, count: int, shards: int, seed: int = 0,
                           chunk: int = 10_000) -> int:  # fmt: skip
        """Insert ``count`` copies of certificate ``template_serial`` with random 159-bit serials, each in shard
        ``serial mod shards``; returns how many it inserted."""
        with self._read() as session:
            template = session.exec(
                select(CertificateRecord).where(CertificateRecord.serial_hex == template_serial)
            ).one()
        row = template.model_dump(exclude={"id", "serial_hex", "crl_shard", "created_at"})
        rng = random.Random(seed)  # noqa: S311 - synthetic serials for a benchmark, never issued
        done = 0
        while done < count:
            size = min(chunk, count - done)
            now = datetime.now(UTC)
            rows = []
            for _ in range(size):
                serial = rng.getrandbits(159) | (1 << 158)
                rows.append({**row, "serial_hex": serial_hex(serial), "crl_shard": serial % shards, "created_at": now})
            with self._write() as tx:
                tx.connection.execute(insert(_TABLE), rows)
                tx.audit("bench.synthetic_certificates", template_serial, count=size)
            done += size
        return done
