"""Self-test of the private-key scanner (tests/security/scan.py): it must be able to fail.

Software keys are generated here, in memory, only to prove the scanner detects them; they are never printed
and touch the disk only under ``tmp_path``. Every assertion compares finding lists computed beforehand, so a
failure report shows offsets and kinds, not key bytes. Run: ``.venv/bin/pytest tests/security/test_scan.py``.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import NameOID

from tests.security.scan import Finding, scan_bytes, scan_tree


@dataclass(frozen=True)
class SoftwareKeys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:  # never let pytest render key objects
        return "SoftwareKeys(<redacted>)"


@pytest.fixture(scope="module")
def keys() -> SoftwareKeys:
    return SoftwareKeys(rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1()))


def _encode(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, encoding: Encoding, fmt: PrivateFormat) -> bytes:
    return key.private_bytes(encoding, fmt, NoEncryption())


def _kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


@pytest.mark.parametrize("fmt", [PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "traditional"])
@pytest.mark.parametrize("algorithm", ["rsa", "ec"])
def test_detects_der_private_key(keys: SoftwareKeys, algorithm: str, fmt: PrivateFormat) -> None:
    key = keys.rsa if algorithm == "rsa" else keys.ec
    findings = scan_bytes(_encode(key, Encoding.DER, fmt), "der")
    offsets = [f.offset for f in findings if f.kind.endswith("(DER)")]
    # PKCS#8 RSA also yields a second finding: the traditional RSAPrivateKey nested in its OCTET STRING.
    assert 0 in offsets, f"{algorithm} DER ({fmt}) not detected at offset 0: {_kinds(findings)}"


@pytest.mark.parametrize(
    ("fmt", "label"),
    [
        (PrivateFormat.PKCS8, "PRIVATE KEY"),
        (PrivateFormat.TraditionalOpenSSL, "RSA PRIVATE KEY"),
        (PrivateFormat.OpenSSH, "OPENSSH PRIVATE KEY"),
    ],
    ids=["pkcs8", "traditional", "openssh"],
)
def test_detects_pem_rsa_private_key(keys: SoftwareKeys, fmt: PrivateFormat, label: str) -> None:
    findings = scan_bytes(b"log line\n" + _encode(keys.rsa, Encoding.PEM, fmt) + b"\nmore", "pem")
    assert f"PEM {label} block" in _kinds(findings), f"PEM {label} not detected: {_kinds(findings)}"


def test_detects_pem_ec_private_key(keys: SoftwareKeys) -> None:
    findings = scan_bytes(_encode(keys.ec, Encoding.PEM, PrivateFormat.TraditionalOpenSSL), "pem")
    assert "PEM EC PRIVATE KEY block" in _kinds(findings), _kinds(findings)


def test_detects_pem_encrypted_private_key(keys: SoftwareKeys) -> None:
    pem = keys.ec.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"scanner-self-test"))
    findings = scan_bytes(pem, "pem")
    assert "PEM ENCRYPTED PRIVATE KEY block" in _kinds(findings), _kinds(findings)


def test_detects_encrypted_pkcs8_der(keys: SoftwareKeys) -> None:
    der = keys.ec.private_bytes(Encoding.DER, PrivateFormat.PKCS8, BestAvailableEncryption(b"scanner-self-test"))
    findings = scan_bytes(der, "der")
    assert [f.offset for f in findings] == [0], _kinds(findings)
    assert findings[0].kind == "encrypted private key (DER)"


@pytest.mark.parametrize("algorithm", ["rsa", "ec"])
@pytest.mark.parametrize("fmt", [PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "traditional"])
def test_detects_der_embedded_at_offset_in_random_bytes(keys: SoftwareKeys, algorithm: str, fmt: PrivateFormat) -> None:
    key = keys.rsa if algorithm == "rsa" else keys.ec
    offset = 4093
    blob = os.urandom(offset) + _encode(key, Encoding.DER, fmt) + os.urandom(5000)
    findings = scan_bytes(blob, "blob")
    assert offset in [f.offset for f in findings], f"key at offset {offset} not detected: {findings}"


def test_detects_ed25519_pkcs8_der_of_48_bytes() -> None:
    der = ed25519.Ed25519PrivateKey.generate().private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    assert len(der) == 48
    findings = scan_bytes(os.urandom(77) + der, "blob")
    assert [f.offset for f in findings] == [77], _kinds(findings)


def test_detects_base64_der_inside_json(keys: SoftwareKeys) -> None:
    der = _encode(keys.rsa, Encoding.DER, PrivateFormat.PKCS8)
    document = json.dumps({"label": "leak", "blob": base64.b64encode(der).decode()}).encode()
    findings = scan_bytes(document, "json")
    assert any("in base64" in kind for kind in _kinds(findings)), _kinds(findings)


def test_scan_tree_finds_a_key_file_and_names_it(keys: SoftwareKeys, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "clean.txt").write_bytes(b"nothing here")
    (tmp_path / "sub" / "leak.bin").write_bytes(os.urandom(300) + _encode(keys.ec, Encoding.DER, PrivateFormat.PKCS8))
    findings, scanned = scan_tree(tmp_path)
    assert scanned == 2
    assert [(f.source, f.offset) for f in findings] == [(str(Path("sub") / "leak.bin"), 300)]


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scanner self-test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    return builder.sign(key, hashes.SHA256())


def test_public_material_and_random_bytes_are_clean(keys: SoftwareKeys) -> None:
    cert = _certificate(keys.ec)
    samples = {
        "certificate DER": cert.public_bytes(Encoding.DER),
        "certificate PEM": cert.public_bytes(Encoding.PEM),
        "RSA SPKI DER": keys.rsa.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        "EC SPKI PEM": keys.ec.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "random": os.urandom(200_000),
        "-----BEGIN PUBLIC KEY----- text": b"-----BEGIN PUBLIC KEY-----\n",
    }
    dirty = {name: _kinds(scan_bytes(data, name)) for name, data in samples.items()}
    assert {name: kinds for name, kinds in dirty.items() if kinds} == {}


def test_scanner_is_fast_enough_for_token_files_and_databases() -> None:
    blob = bytes([0x30, 0x82, 0x01, 0x00]) * 25_000 + os.urandom(400_000)  # worst case: candidates everywhere
    started = time.monotonic()
    findings = scan_bytes(blob, "blob")
    assert findings == []
    assert time.monotonic() - started < 10
