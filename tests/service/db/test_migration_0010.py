"""Migration 0010 on a database holding certificates and CRLs from before it, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from service.db.migrate import alembic_config, upgrade

AT = datetime(2026, 12, 1, tzinfo=UTC)
_CERT = (
    "INSERT INTO certificate (serial_hex, issuer, profile, subject, key_algorithm, assurance_level, status, "
    "not_before, not_after, validity_rule, linted, key_origin, created_at) VALUES (:serial, 'signature', "
    "'signature', 'CN=x', 'p256', 'IAL3', :status, :at, :at, 'r', true, 'unknown', :at)"
)
_CRL = (
    "INSERT INTO crl (issuer, number, this_update, next_update, crl_der, entries) "
    "VALUES ('signature', :number, :at, :at, :der, 1)"
)


def test_existing_rows_get_shard_0_and_one_change_per_revocation(database_url: str) -> None:
    engine = create_engine(database_url)
    upgrade(engine, "0009")
    with engine.begin() as connection:
        for serial, status in (("0a", "issued"), ("0b", "revoked"), ("0c", "pending")):
            connection.execute(text(_CERT), {"serial": serial, "status": status, "at": AT})
        connection.execute(text(_CRL), {"number": 7, "at": AT, "der": b"\x30\x00"})
    upgrade(engine)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT serial_hex, crl_shard, status_changes FROM certificate ORDER BY 1"))
        assert [tuple(r) for r in rows] == [("0a", 0, 0), ("0b", 0, 1), ("0c", 0, 0)]
        crl = connection.execute(text("SELECT number, shard, covers FROM crl")).one()
        assert tuple(crl) == (7, None, None)  # the old CRL is the complete CRL, covering nothing known: due
        assert connection.execute(text("SELECT stay_limit FROM resident")).all() == []
        # shards number on their own: shard 3 may take number 7, the complete CRL may not take it again
        connection.execute(text("INSERT INTO crl (issuer, number, this_update, next_update, crl_der, shard) "
                                "VALUES ('signature', 7, :at, :at, :der, 3)"), {"at": AT, "der": b""})  # fmt: skip
    for shard in (None, 3):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("INSERT INTO crl (issuer, number, this_update, next_update, crl_der, shard) "
                                    "VALUES ('signature', 7, :at, :at, :der, :shard)"),
                               {"at": AT, "der": b"", "shard": shard})  # fmt: skip
    config = alembic_config()  # and back: shard CRLs go, the complete CRLs stay
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT number FROM crl")).scalars().all() == [7]
    engine.dispose()
