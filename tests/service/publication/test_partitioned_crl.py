"""Partitioned CRL publication on both backends, with a software CA key (no token): numbers per shard, the
publication lock under concurrency, the status-change coverage through a release from hold, and the one-pass
publication of every scope."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca.crl import crl_shard
from ca.extensions import CaUrls
from ca.issuance import IssuanceIntent
from ca.profiles import AssuranceLevel
from ca.signing import SigningKey
from hsm import KeyAlgorithm
from service.db.issuance_store import Binding, Intent, Outcome, Spend
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine
from service.errors import RevocationRefused
from service.publication.crl import BackgroundPublisher, CrlIssuer, CrlPublication, Published

CA, SHARDS = "signature", 4
URLS = CaUrls("http://127.0.0.1:8000")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def repo(database_url: str) -> Iterator[RegistryRepository]:
    engine = make_engine(database_url)
    yield RegistryRepository(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def issuer() -> CrlIssuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koshin Signature CA")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return CrlIssuer(CA, certificate, SigningKey(key, KeyAlgorithm.P256, key), SHARDS, URLS)  # type: ignore[arg-type]


def publication(repo: RegistryRepository, issuer: CrlIssuer) -> CrlPublication:
    return CrlPublication(repo, {CA: issuer}, timedelta(hours=24))


def issue(repo: RegistryRepository, count: int, shard: int | None = None) -> list[int]:
    """``count`` issued certificate rows of CA (all in ``shard`` if given), as the pipeline records them."""
    serials: list[int] = []
    while len(serials) < count:
        serial = secrets.randbits(159) | 1 << 158
        if shard is None or serial % SHARDS == shard:
            serials.append(serial)
    intents = [Intent(IssuanceIntent(serial=s, issuer=CA, profile="signature", subject="CN=x", key_algorithm="p256",
                                     assurance=AssuranceLevel.IAL3, not_before=NOW, not_after=NOW, validity_rule="t",
                                     linted=True, crl_shard=crl_shard(s, SHARDS)), Binding())
               for s in serials]  # fmt: skip
    repo.record_intents(Spend(), intents, NOW)
    repo.record_outcome(Outcome(issued={s: b"der" for s in serials}), NOW)
    return serials


def listed(repo: RegistryRepository, shard: int | None) -> set[int]:
    stored = repo.latest_crl(CA, shard)
    assert stored is not None
    return {entry.serial_number for entry in x509.load_der_x509_crl(stored.crl_der)}


def scopes(published: list[Published]) -> list[int | None]:
    return [p.shard for p in published]


def test_the_shard_is_stored_and_each_shard_lists_its_own(repo: RegistryRepository, issuer: CrlIssuer) -> None:
    serials = issue(repo, 40)
    assert {repo.certificate(s).crl_shard for s in serials} == set(range(SHARDS))
    assert all(repo.certificate(s).crl_shard == s % SHARDS for s in serials)
    revoked = serials[:20]
    repo.revoke_many(revoked, "keyCompromise", NOW)
    published = publication(repo, issuer).publish_partitioned(CA)
    assert scopes(published) == [0, 1, 2, 3, None]
    for shard in range(SHARDS):
        assert listed(repo, shard) == {s for s in revoked if s % SHARDS == shard}
        crl = x509.load_der_x509_crl(repo.latest_crl(CA, shard).crl_der)  # type: ignore[union-attr]
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical and idp.value.only_contains_user_certs
        assert [n.value for n in idp.value.full_name or []] == [f"{URLS.base_url}/crl/{CA}/{shard}.crl"]
    assert listed(repo, None) == set(revoked)
    complete = x509.load_der_x509_crl(repo.latest_crl(CA).crl_der)  # type: ignore[union-attr]
    assert x509.IssuingDistributionPoint.oid not in [e.oid for e in complete.extensions]
    assert publication(repo, issuer).publish_partitioned(CA) == []  # every scope covers every change and is fresh


def test_numbers_increase_per_shard_and_independently(repo: RegistryRepository, issuer: CrlIssuer) -> None:
    crls = publication(repo, issuer)
    assert [p.number for p in crls.publish_partitioned(CA)] == [1, 1, 1, 1, 1]  # all missing: all published
    assert crls.publish(CA, shard=2, force=True) is not None
    assert crls.publish(CA, shard=2, force=True) is not None
    assert crls.publish(CA, force=True) is not None  # the complete CRL
    again = crls.publish_partitioned(CA, force=True)
    assert [(p.shard, p.number) for p in again] == [(0, 2), (1, 2), (2, 4), (3, 2), (None, 3)]
    for shard in (None, *range(SHARDS)):
        numbers = [c.number for c in sorted(repo.crls(CA, shard), key=lambda c: c.id or 0)]  # in storage order
        assert numbers == list(range(1, len(numbers) + 1))
        this_updates = [c.this_update for c in repo.crls(CA, shard)]
        assert this_updates == sorted(this_updates)


def test_one_shard_published_from_several_threads_never_reuses_a_number(
    repo: RegistryRepository, issuer: CrlIssuer
) -> None:
    """Threads do not share a lock object here: each takes the scope's lock as another process would (an advisory
    lock on a connection of its own, an flock on a file of its own)."""
    issue(repo, 8, shard=1)
    crls, errors = publication(repo, issuer), list[Exception]()

    def publish_shard() -> None:
        try:
            for _ in range(4):
                crls.publish(CA, shard=1, force=True)
        except Exception as exc:  # reported below
            errors.append(exc)

    def publish_all() -> None:
        try:
            for _ in range(2):
                crls.publish_partitioned(CA, force=True)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish_shard) for _ in range(3)] + [threading.Thread(target=publish_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = sorted(repo.crls(CA, 1), key=lambda c: c.id or 0)
    assert [c.number for c in stored] == list(range(1, 3 * 4 + 2 + 1))  # unique, increasing in storage order
    assert [c.number for c in repo.crls(CA, 0)] == [1, 2]
    assert [c.number for c in repo.crls(CA)] == [1, 2]


def test_a_release_from_hold_makes_its_shard_due_and_leaves_its_crl(
    repo: RegistryRepository, issuer: CrlIssuer
) -> None:
    held, other, kept = issue(repo, 3, shard=2)
    crls = publication(repo, issuer)
    repo.revoke(held, "certificateHold", NOW)
    crls.publish_partitioned(CA)
    assert held in listed(repo, 2) and held in listed(repo, None)
    assert not any(crls.due(CA, shard=s) for s in (None, *range(SHARDS)))

    with pytest.raises(RevocationRefused, match="not on hold"):
        repo.release_hold(kept, NOW)
    released = repo.release_hold(held, NOW)
    assert (released.status, released.revoked_at, released.revocation_reason) == ("issued", None, None)
    assert [s for s in (None, *range(SHARDS)) if crls.due(CA, shard=s)] == [None, 2]
    assert scopes(crls.publish_partitioned(CA)) == [2, None]  # only what changed
    assert held not in listed(repo, 2) and held not in listed(repo, None)

    # a hold and a release together leave the number of revoked certificates as it was: still due
    repo.revoke(other, "certificateHold", NOW)
    crls.publish_partitioned(CA)
    repo.release_hold(other, NOW)
    repo.revoke(kept, "keyCompromise", NOW)
    assert repo.crl_state(CA, 2).entries == 1 and crls.due(CA, shard=2)
    crls.publish_partitioned(CA)
    assert listed(repo, 2) == {kept}


def test_the_background_publisher_publishes_the_changed_shard(repo: RegistryRepository, issuer: CrlIssuer) -> None:
    (serial,) = issue(repo, 1, shard=3)
    publisher = BackgroundPublisher(publication(repo, issuer), coalesce_seconds=0.05, check_seconds=60)
    publisher.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while repo.latest_crl(CA) is None and datetime.now(UTC) < deadline:  # the start-up check: every scope
            threading.Event().wait(0.05)
        before = {s: repo.crl_state(CA, s).number for s in (None, *range(SHARDS))}
        assert all(before.values())
        repo.revoke(serial, "keyCompromise", NOW)
        publisher.revoked([CA])
        while serial not in listed(repo, 3) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        publisher.stop()
    after = {s: repo.crl_state(CA, s).number for s in (None, *range(SHARDS))}
    assert serial in listed(repo, 3) and serial in listed(repo, None)
    assert {s for s in after if after[s] != before[s]} == {3, None}  # the other shards did not change


def test_the_stream_gives_what_the_repository_lists(repo: RegistryRepository) -> None:
    """Revocation times read untyped while streaming are the instants stored, on both backends."""
    serials = issue(repo, 6)
    jst = timezone(timedelta(hours=9))
    repo.revoke_many(serials[:3], "superseded", datetime(2026, 1, 2, 21, 0, 5, tzinfo=jst))
    repo.revoke_many(serials[3:5], "keyCompromise", NOW)
    with repo.revoked_stream(CA) as rows:
        streamed = sorted((entry, shard) for shard, entry in rows)
    assert [entry for entry, _ in streamed] == sorted(repo.revoked_entries(CA))
    assert all(shard == entry.serial % SHARDS for entry, shard in streamed)
    assert {entry.revoked_at for entry, _ in streamed} == {datetime(2026, 1, 2, 12, 0, 5, tzinfo=UTC), NOW}
