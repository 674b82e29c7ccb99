"""The repository on both backends (SQLite file, throwaway PostgreSQL), and the PostgreSQL fixture itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from psycopg import sql
from sqlalchemy import create_engine, text

from bench.pgserver import PgServer
from ca.errors import SerialCollision
from ca.issuance import IssuanceIntent
from ca.profiles import AssuranceLevel
from service.db.issuance_store import Binding, Intent, Outcome, Spend
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine, utc
from service.errors import CrlNumberTaken, RevocationRefused

JST = timezone(timedelta(hours=9))
ISSUER = "test-issuing-ca"


@pytest.fixture
def repo(database_url: str) -> Iterator[RegistryRepository]:
    engine = make_engine(database_url)
    yield RegistryRepository(engine)
    engine.dispose()


def reserve(repo: RegistryRepository, wanted: IssuanceIntent) -> None:
    repo.record_intents(Spend(), [Intent(wanted, Binding())], datetime.now(UTC))


def complete(repo: RegistryRepository, wanted: IssuanceIntent, der: bytes) -> None:
    repo.record_outcome(Outcome(issued={wanted.serial: der}), datetime.now(UTC))


def intent(issuer: str = ISSUER, serial: int | None = None) -> IssuanceIntent:
    not_before = datetime(2025, 4, 1, 3, 4, 5, 123456, tzinfo=UTC)
    return IssuanceIntent(
        serial=serial if serial is not None else secrets.randbits(159) | 1 << 158,  # the full 159 bits
        issuer=issuer,
        profile="signature",
        subject="CN=round trip",
        key_algorithm="p256",
        assurance=AssuranceLevel.IAL3,
        not_before=not_before,
        not_after=datetime(2030, 2, 17, 23, 59, 59, tzinfo=JST),  # aware, not UTC: must come back as the same instant
        validity_rule="5th birthday",
        linted=True,
    )


def throwaway_crl(number: int) -> x509.CertificateRevocationList:
    """A tiny CRL signed by a software key that lives only in this function."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)]))
        .last_update(now)
        .next_update(now + timedelta(days=1))
        .add_extension(x509.CRLNumber(number), critical=False)
        .sign(key, hashes.SHA256())
    )


def assert_utc(moment: datetime, expected: datetime) -> None:
    assert utc(moment) == expected
    assert utc(moment).utcoffset() == timedelta(0)
    assert utc(moment).microsecond == expected.microsecond


# -- the repository, on both backends ------------------------------------------------------------------------------


def test_certificate_record_round_trip(repo: RegistryRepository) -> None:
    wanted = intent()
    reserve(repo, wanted)
    pending = repo.certificate(wanted.serial)
    assert pending.status == "pending"
    assert pending.certificate_der is None
    assert int(pending.serial_hex, 16) == wanted.serial
    assert (pending.issuer, pending.profile, pending.subject) == (ISSUER, "signature", "CN=round trip")
    assert pending.assurance_level == AssuranceLevel.IAL3.value
    assert pending.linted is True
    assert_utc(pending.not_before, wanted.not_before)
    assert_utc(pending.not_after, wanted.not_after)
    assert utc(pending.not_after) == datetime(2030, 2, 17, 14, 59, 59, tzinfo=UTC)

    der = secrets.token_bytes(64) + b"\x00\xff" * 8  # arbitrary bytes, NULs included
    complete(repo, wanted, der)
    issued = repo.certificate(wanted.serial)
    assert issued.status == "issued"
    assert issued.certificate_der == der
    assert [r.serial_hex for r in repo.certificates("issued")] == [issued.serial_hex]
    assert repo.certificates("pending") == []


def test_duplicate_serial_is_a_collision(repo: RegistryRepository) -> None:
    first = intent()
    reserve(repo, first)
    with pytest.raises(SerialCollision):
        reserve(repo, intent(issuer="another-ca", serial=first.serial))
    assert [r.issuer for r in repo.certificates()] == [ISSUER]  # the failed insert left nothing behind
    reserve(repo, intent())  # and the store still takes new serials


def test_revoke_and_revoked_entries(repo: RegistryRepository) -> None:
    revoked, kept, elsewhere, pending = intent(), intent(), intent(issuer="another-ca"), intent()
    for item in (revoked, kept, elsewhere):
        reserve(repo, item)
        complete(repo, item, b"der")
    reserve(repo, pending)
    at = datetime(2026, 1, 2, 12, 0, 0, 654321, tzinfo=JST)

    record = repo.revoke(revoked.serial, "keyCompromise", at)
    assert record.status == "revoked"
    assert record.revocation_reason == "keyCompromise"
    assert record.revoked_at is not None
    assert_utc(record.revoked_at, at)
    repo.revoke(elsewhere.serial, "superseded", at)

    entries = repo.revoked_entries(ISSUER)
    assert [(e.serial, e.reason) for e in entries] == [(revoked.serial, x509.ReasonFlags.key_compromise)]
    assert_utc(entries[0].revoked_at, at)
    with pytest.raises(RevocationRefused):
        repo.revoke(revoked.serial, "keyCompromise", at)
    with pytest.raises(RevocationRefused):
        repo.revoke(pending.serial, "keyCompromise", at)
    assert repo.certificate(kept.serial).status == "issued"


def _store(repo: RegistryRepository, number: int, issuer: str = ISSUER) -> None:
    crl = throwaway_crl(number)
    next_update = crl.next_update_utc or crl.last_update_utc
    repo.store_crl(issuer, number, crl.public_bytes(Encoding.DER), crl.last_update_utc, next_update, 0)


def test_crl_numbers_are_unique_per_issuer(repo: RegistryRepository) -> None:
    assert repo.crl_state(ISSUER).number == 0
    _store(repo, 1)
    _store(repo, 2)
    assert repo.crl_state(ISSUER).number == 2
    assert repo.crl_state("another-ca").number == 0
    with pytest.raises(CrlNumberTaken):
        _store(repo, 2)  # the unique (issuer, number) refuses a second CRL 2
    _store(repo, 2, "another-ca")  # another issuer counts on its own
    assert [c.number for c in repo.crls(ISSUER)] == [1, 2]


# -- the PostgreSQL fixture ---------------------------------------------------------------------------------------


def test_server_is_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version()")).scalar_one()
            database = connection.execute(text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert str(version).startswith("PostgreSQL ")
    assert database == "koshin_test"


def test_created_databases_are_isolated(pg_server: PgServer) -> None:
    names = [f"iso_{secrets.token_hex(6)}" for _ in range(2)]
    engines = [create_engine(pg_server.create_database(name)) for name in names]
    try:
        with engines[0].begin() as connection:
            connection.execute(text("CREATE TABLE marker (id integer)"))
            connection.execute(text("INSERT INTO marker VALUES (1)"))
        with engines[0].connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM marker")).scalar_one() == 1
        with engines[1].connect() as connection:
            assert connection.execute(text("SELECT to_regclass('marker')")).scalar_one() is None
            assert connection.execute(text("SELECT current_database()")).scalar_one() == names[1]
    finally:
        for engine in engines:
            engine.dispose()
        for name in names:
            pg_server.drop_database(name)


def test_datetimes_do_not_depend_on_the_server_time_zone(pg_server: PgServer) -> None:
    """The fixture's server runs in UTC; a deployment in Japan may not. Instants must survive either way."""
    name = f"tz_{secrets.token_hex(6)}"
    url = pg_server.create_database(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} SET timezone TO 'Asia/Tokyo'").format(sql.Identifier(name)))
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW timezone")).scalar_one() == "Asia/Tokyo"
        repo, wanted = RegistryRepository(engine), intent()
        reserve(repo, wanted)
        record = repo.certificate(wanted.serial)
        assert_utc(record.not_before, wanted.not_before)
        assert_utc(record.not_after, wanted.not_after)
    finally:
        engine.dispose()
        pg_server.drop_database(name)


def test_database_names_are_checked(pg_server: PgServer) -> None:
    for bad in ("Upper", "x; DROP DATABASE koshin_test", "postgres", ""):
        with pytest.raises(ValueError, match="database name"):
            pg_server.create_database(bad)
