"""The operator commands, run as an operator runs them: the `koshin` executable on the embedded default."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.issuance import IssuanceIntent
from ca.profiles import AssuranceLevel
from service.db.issuance_store import Binding, Intent, Spend
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine
from tests.conftest import require_softhsm
from tests.support.cli import Cli
from tests.support.helpers import openssl, run

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

HOLDER = {
    "name": "佐藤 一郎",
    "address": "愛媛県松山市二番町四丁目7番地2",
    "prefecture": "愛媛県",
    "municipality": "松山市",
    "date_of_birth": "1975-08-01",
    "sex": "male",
}


def _csr_file(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, ca: bool = False) -> Path:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    require_softhsm()
    tool = Cli(tmp_path_factory.mktemp("cli") / "home")
    tool.ok("init")
    return tool


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cli-input")
    holder = base / "holder.json"
    holder.write_text(json.dumps(HOLDER, ensure_ascii=False))
    return {
        "holder": holder,
        "csr": _csr_file(base / "good.csr", ec.generate_private_key(ec.SECP256R1())),
        "weak": _csr_file(base / "weak.csr", rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505
        "ca": _csr_file(base / "ca.csr", ec.generate_private_key(ec.SECP256R1()), ca=True),
        "garbage": base / "garbage.csr",
        "base": base,
    }


def _list(cli: Cli) -> list[dict[str, object]]:
    rows = json.loads(cli.ok("ca", "list", "--json"))
    assert isinstance(rows, list)
    return rows


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    require_softhsm()
    stderr = Cli(tmp_path / "fresh").fails("ca", "chain")
    assert "koshin init" in stderr


def test_init_is_idempotent(cli: Cli) -> None:
    audit_before = json.loads(cli.ok("keys", "audit", "--json"))
    out = cli.ok("init")
    assert "nothing changed" in out
    assert json.loads(cli.ok("keys", "audit", "--json")) == audit_before
    pins = sorted(p.name for p in (cli.home / "secrets").iterdir())
    assert pins == ["so.pin", "user.pin"]
    for pin in (cli.home / "secrets").iterdir():
        assert pin.stat().st_mode & 0o777 == 0o600


def test_keys_audit_reports_every_key_clean(cli: Cli) -> None:
    report = json.loads(cli.ok("keys", "audit", "--json"))
    private = [k for k in report["keys"] if k["class"] == "PRIVATE_KEY"]
    assert {k["label"] for k in private} >= {
        "koshin-root",
        "koshin-signature-ca",
        "koshin-signature-ocsp",
        "koshin-user-authentication-ca",
        "koshin-user-authentication-ocsp",
    }
    assert report["violations"] == 0
    for key in private:
        attrs = key["attributes"]
        assert attrs["SENSITIVE"] and attrs["ALWAYS_SENSITIVE"] and attrs["NEVER_EXTRACTABLE"] and attrs["LOCAL"]
        assert attrs["EXTRACTABLE"] is False and attrs["DECRYPT"] is False
    assert "0 with violations" in cli.ok("keys", "audit")


def test_issue_list_revoke_crl(cli: Cli, files: dict[str, Path]) -> None:
    base = files["base"]
    chain = base / "chain.pem"
    cli.ok("ca", "chain", "--out", str(chain))
    assert chain.read_text().count("BEGIN CERTIFICATE") == 3
    assert cli.ok("ca", "chain") == chain.read_text()

    for profile in ("signature", "user-authentication"):
        out = base / f"{profile}.pem"
        summary = cli.ok("ca", "issue", "--profile", profile, "--csr", str(files["csr"]),
                         "--holder", str(files["holder"]), "--out", str(out))  # fmt: skip
        assert "issued" in summary and "5th birthday" in summary
        verified = run([openssl(), "verify", "-CAfile", str(chain), str(out)])
        assert verified.returncode == 0, verified.stdout + verified.stderr

    pem = cli.ok("ca", "issue", "--profile", "signature", "--csr", str(files["csr"]), "--holder", str(files["holder"]))
    cert = x509.load_pem_x509_certificate(pem.encode())
    serial = f"{cert.serial_number:040x}"
    rows = {row["serial"]: row for row in _list(cli)}
    assert rows[serial]["status"] == "issued" and rows[serial]["profile"] == "signature"

    assert "revoked" in cli.ok("ca", "revoke", serial, "--reason", "affiliationChanged")
    assert {row["serial"]: row for row in _list(cli)}[serial]["status"] == "revoked"
    assert "already revoked" in cli.fails("ca", "revoke", serial, "--reason", "superseded")

    crl_path = base / "signature.crl"
    assert "1 entries" in cli.ok("ca", "crl", "--ca", "signature", "--out", str(crl_path))
    checked = run([openssl(), "crl", "-inform", "DER", "-in", str(crl_path), "-CAfile", str(chain), "-noout", "-text"])
    assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout, checked.stderr
    assert "Affiliation Changed" in checked.stdout
    assert serial.upper().lstrip("0") in checked.stdout.replace(":", "").upper()
    cli.ok("ca", "crl", "--ca", "root")
    assert (cli.home / "crl" / "root.crl").exists()


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("garbage", "malformed CSR"),
        ("weak", "too small"),
        ("ca", "CA:TRUE"),
        ("missing-file", "cannot read CSR"),
        ("unknown-profile", "unknown profile"),
        ("holder-missing-field", "date_of_birth"),
    ],
)
def test_bad_input_is_one_clear_line_and_issues_nothing(
    cli: Cli, files: dict[str, Path], case: str, needle: str
) -> None:
    files["garbage"].write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n")
    holder, csr, profile = files["holder"], files["csr"], "signature"
    if case in ("garbage", "weak", "ca"):
        csr = files[case]
    elif case == "missing-file":
        csr = files["base"] / "nope.csr"
    elif case == "unknown-profile":
        profile = "tls-server"
    else:
        holder = files["base"] / "partial.json"
        holder.write_text(json.dumps({k: v for k, v in HOLDER.items() if k != "date_of_birth"}))
    before = len(_list(cli))
    stderr = cli.fails("ca", "issue", "--profile", profile, "--csr", str(csr), "--holder", str(holder))
    assert needle in stderr
    assert stderr.startswith("koshin: error:") and len(stderr.strip().splitlines()) == 1
    assert len(_list(cli)) == before


def test_bad_revoke_arguments(cli: Cli) -> None:
    assert "not hexadecimal" in cli.fails("ca", "revoke", "zz-top", "--reason", "superseded")
    assert "no certificate" in cli.fails("ca", "revoke", "0badc0de", "--reason", "superseded")
    assert "lostCard" in cli.fails("ca", "revoke", "0badc0de", "--reason", "lostCard")


def test_init_completes_an_older_hierarchy(tmp_path: Path) -> None:
    """A hierarchy made before koshin had a TSA gets one on the next init, and init says so."""
    require_softhsm()
    tool = Cli(tmp_path / "older")
    tool.ok("init")
    with sqlite3.connect(tool.home / "koshin.db") as db:
        db.execute("DELETE FROM ca_record WHERE role = 'tsa'")
    out = tool.ok("init")
    assert "completed: added tsa (tsa)" in out, out
    assert "nothing changed" in tool.ok("init")


def test_reconcile_resolves_an_intent_a_crash_left_pending(cli: Cli) -> None:
    """An intent recorded before the token signed, its outcome never recorded (the process died): `koshin ca
    reconcile` leaves it alone within the grace period and, past it, records it revoked and says so."""
    engine = make_engine(f"sqlite:///{cli.home / 'koshin.db'}")
    serial = x509.random_serial_number()
    now = datetime.now(UTC).replace(microsecond=0)
    intent = IssuanceIntent(serial, "signature", "signature", "CN=crashed", "p256", AssuranceLevel.IAL3, now,
                            now + timedelta(days=1), "test", linted=True)  # fmt: skip
    RegistryRepository(engine).record_intents(Spend(), [Intent(intent, Binding())], now - timedelta(minutes=1))
    engine.dispose()

    assert json.loads(cli.ok("ca", "reconcile", "--json")) == []  # a minute old: within the default 300 s
    (row,) = json.loads(cli.ok("ca", "reconcile", "--grace-seconds", "30", "--json"))
    assert row["serial"] == f"{serial:040x}" and (row["status"], row["reason"]) == ("revoked", "cessationOfOperation")
    listed = {r["serial"]: r for r in json.loads(cli.ok("ca", "list", "--json"))}
    assert listed[f"{serial:040x}"]["status"] == "revoked"
    assert "no pending intents" in cli.ok("ca", "reconcile", "--grace-seconds", "0")
    with sqlite3.connect(cli.home / "koshin.db") as db:
        (crl_der,) = db.execute("SELECT crl_der FROM crl WHERE issuer = 'signature' ORDER BY number DESC").fetchone()
    assert x509.load_der_x509_crl(crl_der).get_revoked_certificate_by_serial_number(serial) is not None
