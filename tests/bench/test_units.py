"""Units the benchmark work added, without a token: the lint dispatch index gives pkilint's own results;
pre-signed OCSP responses are served only for nonce-less requests, inside their validity, until forgotten; the
CRL written as DER is byte-for-byte what cryptography's builder makes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca import pkix_lint
from ca.crl import REASONS, RevokedEntry, build_crl
from ca.signing import SigningKey, throwaway_key
from hsm import KeyAlgorithm
from tests.support.ocsp import Setup, _setup

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


def _holder_like(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, ca: bool) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    public = key.public_key()
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number()).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, not ca, False, False, False, ca, ca, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://127.0.0.1:8000/crl/signature.crl")], None, None, None)]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("a@example.jp")]), critical=True)
    )  # fmt: skip
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def _results(linter: pkix_lint.PkixValidators, der: bytes) -> list[tuple[str, str, tuple[str, ...]]]:
    document = linter._loader.load_der_document(der, "t")
    return [
        (type(r.validator).__name__, r.node.path, tuple(str(f) for f in r.finding_descriptions))
        for r in linter._validator.validate(document.root)
    ]


@pytest.mark.parametrize("ca", [False, True])
def test_the_dispatch_index_runs_every_validator_on_the_nodes_pkilint_would(
    ca: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = pkix_lint.PkixValidators()
    with monkeypatch.context() as m:
        m.setattr(pkix_lint, "_index_dispatch", lambda container: None)
        plain = pkix_lint.PkixValidators()
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())):
        der = _holder_like(key, ca=ca)
        expected = _results(plain, der)
        assert expected  # the walk found something to say
        assert _results(indexed, der) == expected
        assert _results(indexed, der) == expected  # the index, once filled, changes nothing


@pytest.fixture(scope="module")
def setup() -> Setup:
    return _setup(KeyAlgorithm.P256)


def _reference_crl(issuer: x509.Certificate, key: Any, entries: list[RevokedEntry], number: int) -> bytes:
    """The same CRL from cryptography's builder (what ca.crl did before it wrote the DER itself)."""
    revoked = []
    for entry in entries:
        item = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
        if entry.reason is not x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
        revoked.append(item.build())
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=NOW,
        next_update=NOW + timedelta(hours=24),
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
        ],
        revoked_certificates=revoked,
    )
    hash_ = hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1" else None
    return builder.sign(key, hash_ or hashes.SHA256()).tbs_certlist_bytes


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA2048, KeyAlgorithm.P256, KeyAlgorithm.P384], ids=str)
@pytest.mark.parametrize("count", [0, 1, 200])
def test_the_written_crl_is_what_cryptographys_builder_makes(algorithm: KeyAlgorithm, count: int) -> None:
    key = throwaway_key(algorithm)
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "署名用認証局")])
    issuer = (
        x509.CertificateBuilder().subject_name(issuer_name).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    rng = random.Random(count)  # noqa: S311 - synthetic serials
    flags = list(REASONS.values())
    entries = [
        RevokedEntry(rng.getrandbits(159) | 1, NOW - timedelta(days=rng.randint(0, 9000)), flags[i % len(flags)])
        for i in range(count)
    ]
    if count:
        entries.append(RevokedEntry(2**158 + 7, datetime(2051, 1, 1, tzinfo=UTC), x509.ReasonFlags.superseded))
    signing = SigningKey(key, algorithm, key)  # type: ignore[arg-type]  # a software key stands in for the token's
    crl = build_crl(issuer, signing, entries, 42, NOW, timedelta(hours=24))
    assert crl.tbs_certlist_bytes == _reference_crl(issuer, key, entries, 42)
    assert crl.is_signature_valid(key.public_key())
    assert len(crl) == len(entries)


def test_a_serial_that_is_not_positive_is_refused() -> None:
    key = throwaway_key(KeyAlgorithm.P256)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    issuer = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
        .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    signing = SigningKey(key, KeyAlgorithm.P256, key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        build_crl(issuer, signing, [RevokedEntry(0, NOW, x509.ReasonFlags.superseded)],
                  1, NOW, timedelta(hours=1))  # fmt: skip
