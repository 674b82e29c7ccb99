"""CRLs signed on the token: openssl accepts the signature and sees the revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.crl import RevokedEntry, build_crl, reason_flag
from ca.errors import UnknownReason
from ca.hierarchy import signing_key
from ca.issuance import IssueRequest
from ca.profiles import AssuranceLevel
from hsm import TokenSession
from service.errors import CertificateNotFound, RevocationRefused
from service.publication.crl import CrlIssuer, CrlPublication
from tests.support.helpers import openssl, openssl_verify, run, write_pem
from tests.support.pki_world import HOLDER, Pki


def test_revoked_certificate_is_on_a_crl_openssl_accepts(
    pki: Pki, token: TokenSession, holder_csr: x509.CertificateSigningRequest, tmp_path: Path
) -> None:
    revoked = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3))
    kept = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3))
    at = datetime.now(UTC).replace(microsecond=0)
    pki.repo.revoke(revoked.certificate.serial_number, "affiliationChanged", at)

    issuer = pki.material("signature", "issuing")
    publication = CrlPublication(
        pki.repo, {"signature": CrlIssuer("signature", issuer.certificate, signing_key(token, issuer.key_label))},
        timedelta(hours=24),
    )  # fmt: skip
    before = pki.repo.crl_state("signature").number
    published = publication.publish("signature")
    assert published is not None and published.number == before + 1
    assert publication.publish("signature") is None  # it lists every revocation and is fresh: nothing to do
    stored = pki.repo.latest_crl("signature")
    assert stored is not None and stored.number == published.number
    crl = x509.load_der_x509_crl(stored.crl_der)
    number = published.number
    entry = crl.get_revoked_certificate_by_serial_number(revoked.certificate.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.affiliation_changed
    assert crl.get_revoked_certificate_by_serial_number(kept.certificate.serial_number) is None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number

    crl_pem = tmp_path / "crl.pem"
    crl_pem.write_bytes(crl.public_bytes(Encoding.PEM))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.chain_pem.read_bytes() + pki.untrusted_pem.read_bytes())
    checked = run([openssl(), "crl", "-in", str(crl_pem), "-CAfile", str(bundle), "-noout"])
    assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout, checked.stderr

    leaf_bad = write_pem(tmp_path / "revoked.pem", revoked.certificate)
    leaf_ok = write_pem(tmp_path / "kept.pem", kept.certificate)
    result = openssl_verify(leaf_bad, pki.chain_pem, pki.untrusted_pem, "-crl_check", "-CRLfile", str(crl_pem))
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr
    result = openssl_verify(leaf_ok, pki.chain_pem, pki.untrusted_pem, "-crl_check", "-CRLfile", str(crl_pem))
    assert result.returncode == 0, result.stdout + result.stderr


def test_revocation_errors(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    issued = pki.issue(IssueRequest("user-authentication", holder_csr, HOLDER, AssuranceLevel.IAL3))
    serial = issued.certificate.serial_number
    with pytest.raises(UnknownReason):
        pki.repo.revoke(serial, "lostCard", datetime.now(UTC))
    assert pki.repo.certificate(serial).status == "issued"
    pki.repo.revoke(serial, "superseded", datetime.now(UTC))
    with pytest.raises(RevocationRefused, match="already revoked"):
        pki.repo.revoke(serial, "superseded", datetime.now(UTC))
    with pytest.raises(CertificateNotFound):
        pki.repo.revoke(12345, "superseded", datetime.now(UTC))


def test_large_crl_is_built_whole(pki: Pki, token: TokenSession) -> None:
    issuer = pki.material("user-authentication", "issuing")
    at = datetime.now(UTC).replace(microsecond=0)
    entries = [RevokedEntry(serial=10**30 + i, revoked_at=at, reason=reason_flag("superseded")) for i in range(5000)]
    crl = build_crl(issuer.certificate, signing_key(token, issuer.key_label), entries, 7, at, timedelta(hours=1))
    assert len(crl) == 5000
    assert crl.is_signature_valid(issuer.certificate.public_key())  # type: ignore[arg-type]
