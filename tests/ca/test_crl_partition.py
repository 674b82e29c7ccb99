"""Partitioned CRLs signed on the token: a certificate's distribution point is its shard's URL, the shard's
issuing distribution point names exactly that URL, and openssl checks the certificate against it (and refuses
another shard's CRL as a different scope); pkilint finds no error in a shard's CRL; the DER written is
byte-for-byte what cryptography's builder makes with the same issuing distribution point."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.crl import RevokedEntry, shard_scope
from ca.crl_der import crl_der
from ca.hierarchy import signing_key
from ca.issuance import IssueRequest
from ca.profiles import AssuranceLevel, load_profiles
from ca.signing import SigningKey
from hsm import KeyAlgorithm, TokenSession
from service.publication.crl import CrlIssuer, CrlPublication
from tests.support.helpers import openssl_verify, run, write_pem
from tests.support.pki_world import HOLDER, URLS, Pki


def _cdp(cert: x509.Certificate) -> str:
    (point,) = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    (name,) = point.full_name or []
    return str(name.value)


def _pem(path: Path, der: bytes) -> Path:
    path.write_bytes(x509.load_der_x509_crl(der).public_bytes(Encoding.PEM))
    return path


def test_each_certificate_is_checked_against_the_shard_its_distribution_point_names(
    pki: Pki, token: TokenSession, holder_csr: x509.CertificateSigningRequest, tmp_path: Path
) -> None:
    shards = load_profiles().hierarchy.crl_shards("signature")
    revoked = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3)).certificate
    kept = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3)).certificate
    pki.repo.revoke(revoked.serial_number, "keyCompromise", datetime.now(UTC).replace(microsecond=0))
    material = pki.material("signature", "issuing")
    issuer = CrlIssuer("signature", material.certificate, signing_key(token, material.key_label), shards, URLS)
    published = CrlPublication(pki.repo, {"signature": issuer}, timedelta(hours=24)).publish_partitioned("signature")
    assert published and published[-1].shard is None  # the shards, then the complete CRL

    files: dict[int, Path] = {}
    for cert in (revoked, kept):
        shard = cert.serial_number % shards
        assert _cdp(cert) == URLS.crl("signature", shard)
        stored = pki.repo.latest_crl("signature", shard)
        assert stored is not None
        crl = x509.load_der_x509_crl(stored.crl_der)
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical and idp.value.only_contains_user_certs and not idp.value.indirect_crl
        assert [str(n.value) for n in idp.value.full_name or []] == [_cdp(cert)]  # exactly the certificate's URL
        assert crl.is_signature_valid(material.certificate.public_key())  # type: ignore[arg-type]
        files[shard] = _pem(tmp_path / f"shard-{shard}.pem", stored.crl_der)
        der = tmp_path / f"shard-{shard}.der"
        der.write_bytes(stored.crl_der)
        lint = run([str(Path(sys.executable).parent / "lint_crl"), "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR",
                    "--document-format", "DER", str(der)])  # fmt: skip
        assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout + lint.stderr

    leaf_bad, leaf_ok = write_pem(tmp_path / "revoked.pem", revoked), write_pem(tmp_path / "kept.pem", kept)
    chain, untrusted = pki.chain_pem, pki.untrusted_pem
    result = openssl_verify(
        leaf_bad, chain, untrusted, "-crl_check", "-CRLfile", str(files[revoked.serial_number % shards])
    )
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr
    result = openssl_verify(
        leaf_ok, chain, untrusted, "-crl_check", "-CRLfile", str(files[kept.serial_number % shards])
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # another shard's CRL: openssl 3 refuses it as a different scope (error 44), revoked or not
    other = (kept.serial_number + 1) % shards
    stored = pki.repo.latest_crl("signature", other)
    assert stored is not None
    wrong = _pem(tmp_path / "other.pem", stored.crl_der)
    result = openssl_verify(leaf_ok, chain, untrusted, "-crl_check", "-CRLfile", str(wrong))
    assert result.returncode != 0 and "different CRL scope" in result.stdout + result.stderr

    # the complete CRL (no issuing distribution point) covers every certificate, whatever its shard
    complete = pki.repo.latest_crl("signature")
    assert complete is not None
    complete_pem = _pem(tmp_path / "complete.pem", complete.crl_der)
    result = openssl_verify(leaf_bad, chain, untrusted, "-crl_check", "-CRLfile", str(complete_pem))
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr
    result = openssl_verify(leaf_ok, chain, untrusted, "-crl_check", "-CRLfile", str(complete_pem))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_shard_crl_is_what_cryptographys_builder_makes() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "署名用認証局")])
    now = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    issuer = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    entries = [RevokedEntry(10**40 + i, now, x509.ReasonFlags.superseded) for i in range(50)]
    scope = shard_scope(URLS.crl("signature", 7))
    signing = SigningKey(key, KeyAlgorithm.P256, key)  # type: ignore[arg-type]  # a software key for the token's
    ours = x509.load_der_x509_crl(crl_der(issuer, signing, entries, 9, now, now + timedelta(hours=24), scope=scope))
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=name,
        last_update=now,
        next_update=now + timedelta(hours=24),
        extensions=[
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(9)),
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
            x509.Extension(x509.IssuingDistributionPoint.oid, True, scope),
        ],
        revoked_certificates=[
            x509.RevokedCertificateBuilder()
            .serial_number(e.serial)
            .revocation_date(e.revoked_at)
            .add_extension(x509.CRLReason(e.reason), critical=False)
            .build()
            for e in entries
        ],
    )
    assert ours.tbs_certlist_bytes == builder.sign(key, hashes.SHA256()).tbs_certlist_bytes
    assert ours.is_signature_valid(key.public_key())
