"""Every profile under every CA key algorithm: the certificate passes openssl verify and pkilint, and carries
exactly what the profile and holder say (never what the CSR says)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.errors import IssuanceRefused
from ca.issuance import IssueRequest
from ca.profiles import AssuranceLevel, load_profiles
from tests.support.helpers import openssl_verify, pkilint_errors, write_pem
from tests.support.pki_world import HOLDER, Pki

JPKI = "1.2.392.200149.8.5.5."


@pytest.mark.parametrize("profile", ["signature", "user-authentication"])
@pytest.mark.parametrize("holder_key", ["p256", "rsa2048"])
def test_issued_certificate_verifies_and_lints_clean(
    pki: Pki,
    profile: str,
    holder_key: str,
    holder_csr: x509.CertificateSigningRequest,
    holder_csr_rsa: x509.CertificateSigningRequest,
    tmp_path: Path,
) -> None:
    csr = holder_csr if holder_key == "p256" else holder_csr_rsa
    issued = pki.issue(IssueRequest(profile, csr, HOLDER, AssuranceLevel.IAL3))
    cert = issued.certificate
    leaf = write_pem(tmp_path / "leaf.pem", cert)

    result = openssl_verify(leaf, pki.chain_pem, pki.untrusted_pem)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr
    assert pkilint_errors(leaf) == ""
    assert issued.lint is not None and issued.lint.blocking == ()

    record = pki.repo.certificate(cert.serial_number)
    assert record.status == "issued"
    assert record.certificate_der == cert.public_bytes(Encoding.DER)
    assert record.assurance_level == "IAL3" and record.linted
    assert cert.serial_number > 0 and cert.serial_number.bit_length() >= 64
    assert len(cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")) <= 20
    assert cert.public_key() == csr.public_key()
    assert "CSR subject the CA must ignore" not in cert.subject.rfc4514_string()


def test_signature_certificate_carries_the_four_attributes(
    pki: Pki, holder_csr: x509.CertificateSigningRequest
) -> None:
    cert = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3)).certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    values = {o.type_id.dotted_string: o.value for o in san.value.get_values_for_type(x509.OtherName)}
    assert values == {
        JPKI + "1": b"\x0c" + bytes([len(HOLDER.name.encode())]) + HOLDER.name.encode(),
        JPKI + "3": b"\x0c\x011",
        JPKI + "4": b"\x0c\x09419900217",
        JPKI + "5": b"\x0c" + bytes([len(HOLDER.address.encode())]) + HOLDER.address.encode(),
    }
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)] == ["東京都", "千代田区"]
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca


def test_user_authentication_certificate_has_no_personal_data(
    pki: Pki, holder_csr: x509.CertificateSigningRequest
) -> None:
    cert = pki.issue(IssueRequest("user-authentication", holder_csr, HOLDER, AssuranceLevel.IAL2)).certificate
    der = cert.public_bytes(Encoding.DER)
    for value in (HOLDER.name, HOLDER.address, HOLDER.prefecture, HOLDER.municipality, "19900217"):
        assert value.encode() not in der
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and len(cn) == 23 and cn.isalnum()
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.3.6.1.5.5.7.13.2"]  # IAL2


def test_urls_and_key_identifiers(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    cert = pki.issue(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3)).certificate
    issuer = pki.material("signature", "issuing").certificate
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name is not None
    shards = load_profiles().hierarchy.crl_shards("signature")  # partitioned: the certificate names its shard
    assert shards > 1 and pki.repo.certificate(cert.serial_number).crl_shard == cert.serial_number % shards
    shard_url = f"http://127.0.0.1:8000/crl/signature/{cert.serial_number % shards}.crl"
    assert [n.value for n in dp[0].full_name] == [shard_url]
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {d.access_location.value for d in aia} == {
        "http://127.0.0.1:8000/ocsp/signature",
        "http://127.0.0.1:8000/ca/signature.cer",
    }


def test_validity_follows_the_birthday_rule_and_card_cap(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    issued_at = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    cert = pki.issue(
        IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3, issued_at=issued_at)
    ).certificate
    assert cert.not_valid_before_utc == issued_at
    assert cert.not_valid_after_utc == datetime(2031, 2, 17, 14, 59, 59, tzinfo=UTC)  # 2031-02-17 23:59:59 JST
    capped = HOLDER.model_copy(update={"card_expires": datetime(2029, 6, 30).date()})
    cert = pki.issue(
        IssueRequest("user-authentication", holder_csr, capped, AssuranceLevel.IAL3, issued_at=issued_at)
    ).certificate
    assert cert.not_valid_after_utc == datetime(2029, 6, 30, 14, 59, 59, tzinfo=UTC)


def test_prepared_certificate_is_signed_once(pki: Pki, holder_csr: x509.CertificateSigningRequest) -> None:
    prepared = pki.authority.prepare(IssueRequest("signature", holder_csr, HOLDER, AssuranceLevel.IAL3))
    pki.authority.sign(prepared)
    with pytest.raises(IssuanceRefused, match="already"):
        pki.authority.sign(prepared)


def test_ca_certificates(pki: Pki, tmp_path: Path) -> None:
    root = pki.material("root", "root").certificate
    for material in pki.materials:
        cert = material.certificate
        pem = write_pem(tmp_path / f"{material.name}-{material.role}.pem", cert)
        assert pkilint_errors(pem) == "", material
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if material.role == "root":
            assert constraints.value.ca and constraints.value.path_length == 1
            assert usage.key_cert_sign and usage.crl_sign
        elif material.role == "issuing":
            assert constraints.value.ca and constraints.value.path_length == 0
            assert usage.key_cert_sign and usage.crl_sign
            assert cert.issuer == root.subject
        elif material.role == "ocsp":  # role "tsa" is checked in tests/ca/test_tsa.py
            assert not constraints.value.ca and not usage.key_cert_sign
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
            cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
            issuing = write_pem(tmp_path / "issuing-of-ocsp.pem", pki.material(material.name, "issuing").certificate)
            result = openssl_verify(pem, pki.chain_pem, issuing)
            assert result.returncode == 0, result.stdout + result.stderr
