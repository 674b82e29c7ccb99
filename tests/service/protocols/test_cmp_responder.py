"""The CMP responder certificates: issued through the recorded path, linted, answered by OCSP, made at init."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from ca.errors import CaNotInitialised
from ca.extensions import ServerNames
from ca.server import prepare_server_certificate
from hsm import KeyAlgorithm
from service.db.issuance_store import Spend
from service.db.models import CertificateRecord
from service.flows.pipeline import PROVISIONING, Order, Plan
from service.protocols.cmp.responder import PROFILE, key_label, provision_responders, responder
from service.provisioning import provision
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from tests.conftest import SoftHsm, require_softhsm
from tests.support.api_world import make_runtime
from tests.support.cli import KOSHIN, Cli
from tests.support.cmp_tools import HolderToken, ocsp_text, output, verified
from tests.support.helpers import openssl, pkilint_errors, run
from tests.support.live_fixture import CAS, Live

pytestmark = pytest.mark.hsm

# -- the CMP responder: a cmp-responder certificate per issuing CA, provisioned by init ----------------------


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> HolderToken:
    return HolderToken.create(tmp_path_factory.mktemp("cmp-responder-holder"))


CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")


def _responder_records(rt: Runtime, status: str | None = "issued") -> list[CertificateRecord]:
    return [r for r in rt.repo.certificates(status) if r.profile == PROFILE]


def _last_audit_seq(rt: Runtime) -> int:
    return max(r.seq or 0 for r in rt.repo.audit_records(limit=1_000_000))


@pytest.mark.parametrize("ca", CAS)
def test_the_responder_certificate_is_recorded_linted_and_good(
    live: Live, holder: HolderToken, tmp_path: Path, ca: str
) -> None:
    """The certificate that signs CMP answers (an extraCert of the genm answer openssl verified) is a recorded,
    audited cmp-responder certificate of that CA for its token key: it verifies to the root, pkilint finds no
    error, and koshin's OCSP responder answers good."""
    extra = tmp_path / "extra.pem"
    result = holder.cmp(live.base_url, ca, "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x",
                        "-trusted", str(live.root_pem), "-extracertsout", str(extra))  # fmt: skip
    assert result.returncode == 0, output(result)
    sent = [c for c in x509.load_pem_x509_certificates(extra.read_bytes()) if c.issuer == live.issuing[ca].subject]
    assert len(sent) == 1, sent
    certificate = sent[0]
    leaf = tmp_path / "responder.pem"
    leaf.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    rt = live.runtime
    record = rt.repo.certificate(certificate.serial_number)
    assert (record.profile, record.issuer, record.status) == (PROFILE, ca, "issued")
    assert record.certificate_der == certificate.public_bytes(serialization.Encoding.DER)
    actions = [r.action for r in rt.repo.audit_records(limit=1_000_000) if r.object == record.serial_hex]
    assert actions == ["certificate.intent", "certificate.issue"]  # the intent was recorded before the signature
    token_key = load_der_public_key(rt.session.public_key_der(key_label(rt, ca)))
    assert certificate.public_key() == token_key

    ca_name = live.issuing[ca].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert certificate.subject.rfc4514_string() == f"CN={ca_name!s} CMP responder,O=koshin,C=JP"
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [CMC_RA]
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)

    verified(live, ca, leaf)
    assert pkilint_errors(leaf) == ""
    assert "Cert Status: good" in ocsp_text(live, ca, leaf)


def test_a_second_init_changes_nothing(live: Live) -> None:
    rt = live.runtime
    certificates, seq = len(rt.repo.certificates()), _last_audit_seq(rt)
    responders = _responder_records(rt)
    assert sorted(r.issuer for r in responders) == sorted(CAS)
    assert not provision(rt)
    assert provision_responders(rt) == []
    assert len(rt.repo.certificates()) == certificates and _last_audit_seq(rt) == seq
    assert [r.serial_hex for r in _responder_records(rt)] == [r.serial_hex for r in responders]


def test_an_older_installation_gets_its_responders_from_the_next_init(softhsm: SoftHsm, tmp_path: Path) -> None:
    """A hierarchy made before the responders were provisioned (their profile absent), whose signature responder
    key the earlier code had made on first use: requests never make a key; the next init certifies that key and
    makes the missing one, once."""
    settings = Settings(home=tmp_path, pkcs11_module=softhsm.module, token_label=softhsm.token_label,
                        token_pin=SecretStr(softhsm.pin), database_url=f"sqlite:///{tmp_path / 'koshin.db'}",
                        ca_key_algorithm=KeyAlgorithm.P256, key_label_prefix="cmp-older-")  # fmt: skip
    rt = open_runtime(settings)
    try:
        full = rt.profiles
        rt.profiles = full.model_copy(update={"servers": {n: p for n, p in full.servers.items() if n != PROFILE}})
        assert provision(rt) and _responder_records(rt, None) == []
        rt.profiles = full
        rt.session.generate_keypair(KeyAlgorithm.P256, key_label(rt, "signature"))
        earlier_key = load_der_public_key(rt.session.public_key_der(key_label(rt, "signature")))
        with pytest.raises(CaNotInitialised, match="koshin init"):
            responder(rt, "user-authentication")
        assert not rt.session.has_key(key_label(rt, "user-authentication"))

        assert not provision(rt)
        records = {r.issuer: r for r in _responder_records(rt)}
        assert sorted(records) == sorted(CAS)
        assert responder(rt, "signature").certificate.public_key() == earlier_key
        assert rt.session.has_key(key_label(rt, "user-authentication"))
        certificates, seq = len(rt.repo.certificates()), _last_audit_seq(rt)
        assert not provision(rt)
        assert len(rt.repo.certificates()) == certificates and _last_audit_seq(rt) == seq
    finally:
        rt.close()


def test_a_responder_certificate_near_its_end_is_renewed_and_the_old_superseded(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    rt = make_runtime(softhsm, tmp_path / "home", f"sqlite:///{tmp_path / 'koshin.db'}", "cmp-renew-")
    try:
        first = responder(rt, "signature").certificate
        assert responder(rt, "signature").certificate == first  # not due: reused
        authority = rt.authority()
        public_key = load_der_public_key(rt.session.public_key_der(key_label(rt, "signature")))
        ca_name = (
            authority.issuers["signature"].certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        )
        names = ServerNames(dns=(), common_name=f"{ca_name!s} CMP responder")
        back_dated = datetime.now(UTC) - timedelta(days=340)  # ends in 25 days: due
        order = Order(lambda ca: prepare_server_certificate(ca, PROFILE, public_key, names, back_dated,  # type: ignore[arg-type]
                                                            issuing_ca="signature"))  # fmt: skip
        ending = rt.pipeline().issue(Plan(PROVISIONING, Spend(), (order,))).only.certificate
        assert responder(rt, "signature").certificate == ending  # a request uses it as it is: never renews

        renewed_now = provision_responders(rt)  # the next start renews it
        renewed = responder(rt, "signature").certificate
        assert renewed_now == [renewed]
        assert renewed.serial_number not in (first.serial_number, ending.serial_number)
        assert renewed.public_key() == first.public_key()  # renewal: the same token key
        assert renewed.not_valid_after_utc - datetime.now(UTC) > timedelta(days=360)
        for old in (first, ending):
            record = rt.repo.certificate(old.serial_number)
            assert (record.status, record.revocation_reason) == ("revoked", "superseded")
        stored = rt.repo.latest_crl("signature")
        assert stored is not None
        crl = x509.load_der_x509_crl(stored.crl_der)
        assert {first.serial_number, ending.serial_number} <= {e.serial_number for e in crl}
        assert responder(rt, "signature").certificate == renewed
        assert provision_responders(rt) == []
        assert [r.issuer for r in _responder_records(rt)] == ["user-authentication", "signature"]
    finally:
        rt.close()


def test_serve_with_two_workers_provisions_the_responders_before_any_request(tmp_path: Path) -> None:
    """`koshin serve --workers 2` on a fresh home: both responders exist (one certificate each) before the first
    CMP request, so concurrent requests to both workers neither make keys nor certificates."""
    require_softhsm()
    cli = Cli(tmp_path / "home")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    cli.env["KOSHIN_PUBLIC_BASE_URL"] = base
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([KOSHIN, "serve", "--port", str(port), "--workers", "2"], env=cli.env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert server.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail(f"koshin serve --workers 2 did not become healthy: {log.read_text()[-2000:]}")

        def responders() -> list[tuple[str, str]]:
            with sqlite3.connect(cli.home / "koshin.db") as db:
                query = "SELECT issuer, status FROM certificate WHERE profile = ? ORDER BY issuer"
                return [(str(a), str(b)) for a, b in db.execute(query, (PROFILE,))]

        assert responders() == [("signature", "issued"), ("user-authentication", "issued")]
        root = tmp_path / "root.pem"
        chain = x509.load_pem_x509_certificates(httpx.get(f"{base}/v1/ca/chain", timeout=10).content)
        root.write_bytes(next(c for c in chain if c.subject == c.issuer).public_bytes(serialization.Encoding.PEM))

        def genm(ca: str) -> subprocess.CompletedProcess[str]:
            return run([openssl(), "cmp", "-server", f"127.0.0.1:{port}", "-path", f".well-known/cmp/p/{ca}",
                        "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x", "-trusted", str(root)],
                       timeout=60)  # fmt: skip

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(genm, [*CAS, *CAS, *CAS, *CAS]))
        for result in results:
            assert result.returncode == 0 and "received GENP" in output(result), output(result)
        assert responders() == [("signature", "issued"), ("user-authentication", "issued")]
        assert "Traceback" not in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
