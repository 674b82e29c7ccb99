"""``koshin serve --tls``: stunnel terminates TLS with a token key and a ``tls-server`` certificate from koshin's
own CA; the REST API, OCSP and EST are driven over it with curl and openssl only:

- ``curl --cacert root.pem https://127.0.0.1:$PORT/healthz`` (and an actor-token call);
- ``openssl s_client -connect 127.0.0.1:$PORT -verify_return_error -CAfile root.pem -verify_ip 127.0.0.1``;
- ``openssl verify -purpose sslserver -CAfile root.pem -untrusted issuing.pem tls-server.pem`` and pkilint;
- OCSP: ``openssl ocsp -issuer issuing.pem -cert tls-server.pem -reqout req.der``, POSTed with curl, the answer
  checked with ``openssl ocsp -reqin req.der -respin resp.der -CAfile root.pem ...``;
- EST: ``curl --cacert root.pem -u EVENT:SECRET --data-binary @csr.b64 .../.well-known/est/simpleenroll``;
- CMP: ``openssl cmp -server 127.0.0.1:$PORT -path .well-known/cmp/p/$CA -tls_used -tls_trusted root.pem
  -cmd genm|ir ...`` (ir with the one-time secret and a holder key on a SoftHSM token via the pkcs11 engine).

Credential reuse, reissue and re-key are tested in-process on the session token; the server runs on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from hsm import KeyAlgorithm, TokenSession
from service.errors import ConfigurationError
from service.flows.authorisation import RevocationAsk
from service.flows.revocation import revoke
from service.tls.credentials import ensure_credentials, key_label, server_names
from service.tls.stunnel import StunnelSpec, render_config
from tests.conftest import SoftHsm, require_softhsm
from tests.security.scan import scan_tree
from tests.support.actors import OPERATOR
from tests.support.api_world import make_runtime
from tests.support.cli import Cli
from tests.support.cmp_tools import HolderToken
from tests.support.helpers import openssl, pkilint_errors, run
from tests.support.pki_world import token_csr
from tests.support.registry import REGISTRY
from tests.support.served import free_port

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

KOSHIN = str(Path(sys.executable).parent / "koshin")
START_TIMEOUT = 60.0


def curl() -> str:
    path = shutil.which("curl")
    assert path is not None, "curl is required (Debian package curl)"
    return path


def _children(pid: int, name: str) -> list[int]:
    """Child processes of ``pid`` whose command name starts with ``name`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, _, rest = text.partition("(")[2].rpartition(")")
        if int(rest.split()[1]) == pid and comm.startswith(name):
            found.append(int(stat.parent.name))
    return found


@dataclass
class TlsServer:
    cli: Cli
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    root_pem: Path
    issuing_pem: Path  # the user-authentication CA: issuer of the tls-server certificate
    bundle_pem: Path  # root + both issuing CAs

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def curl(self, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run([curl(), "-sS", "--fail-with-body", "--cacert", str(self.root_pem), *args, f"{self.base}{path}"])

    def stunnel_pids(self) -> list[int]:
        return _children(self.process.pid, "stunnel")


def _start(cli: Cli, port: int, log: Path, *names: str) -> subprocess.Popen[bytes]:
    args = [KOSHIN, "serve", "--tls", "--port", str(port)]
    for name in names:
        args += ["--tls-name", name]
    with log.open("ab") as out:
        return subprocess.Popen(args, env=cli.env, stdout=out, stderr=subprocess.STDOUT)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"koshin serve --tls did not listen within {START_TIMEOUT}s: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    require_softhsm()
    work = tmp_path_factory.mktemp("tls")
    cli = Cli(work / "home")
    port = free_port()
    cli.env["KOSHIN_PUBLIC_BASE_URL"] = f"https://127.0.0.1:{port}"  # OCSP, CRL and caIssuers over TLS too
    log = work / "serve.log"
    process = _start(cli, port, log, "koshin.test")
    server: TlsServer | None = None
    try:
        _wait_listening(process, port, log)
        bundle = work / "bundle.pem"
        cli.ok("ca", "chain", "--out", str(bundle))
        root, issuing = work / "root.pem", work / "issuing.pem"
        certs = x509.load_pem_x509_certificates(bundle.read_bytes())
        root.write_bytes(certs[0].public_bytes(Encoding.PEM))
        auth_ca = next(c for c in certs if "User Authentication" in c.subject.rfc4514_string())
        issuing.write_bytes(auth_ca.public_bytes(Encoding.PEM))
        registry = work / "registry.json"
        registry.write_text(json.dumps(REGISTRY, ensure_ascii=False))
        cli.ok("registry", "import", str(registry))
        server = TlsServer(cli, port, process, log, root, issuing, bundle)
        for _ in range(100):
            if server.curl("/healthz").returncode == 0:
                break
            time.sleep(0.2)
        yield server
    finally:
        running = server.process if server is not None else process  # the restart test replaces it
        stunnels = _children(running.pid, "stunnel")
        _stop(running)
        assert stunnels or server is None, "no stunnel under koshin serve --tls at the end"
        assert all(not Path(f"/proc/{pid}").exists() for pid in stunnels), "stunnel outlived koshin serve"


# -- the served endpoints ------------------------------------------------------------------------------------
def test_healthz_over_tls_with_curl_cacert(tls_server: TlsServer) -> None:
    result = tls_server.curl("/healthz")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "ok"
    named = tls_server.curl("/healthz", "--resolve", f"koshin.test:{tls_server.port}:127.0.0.1")
    assert named.returncode == 0  # (curl to 127.0.0.1 verifies the IP SAN; this the DNS SAN)
    port = tls_server.port
    renamed = run([curl(), "-sS", "--cacert", str(tls_server.root_pem), "--resolve",
                   f"elsewhere.test:{port}:127.0.0.1", f"https://elsewhere.test:{port}/healthz"])  # fmt: skip
    assert renamed.returncode != 0 and "elsewhere.test" in renamed.stderr  # a name not in the certificate
    untrusted = run([curl(), "-sS", f"{tls_server.base}/healthz"])  # the system store does not know koshin's root
    assert untrusted.returncode != 0


def test_openssl_s_client_verifies_the_chain_to_the_root(tls_server: TlsServer) -> None:
    args = [openssl(), "s_client", "-connect", f"127.0.0.1:{tls_server.port}", "-verify_return_error",
            "-CAfile", str(tls_server.root_pem), "-verify_ip", "127.0.0.1", "-servername", "koshin.test"]  # fmt: skip
    result = subprocess.run(args, input="", capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Verify return code: 0 (ok)" in result.stdout
    assert "CN = koshin User Authentication CA" in result.stdout and "CN = koshin.test" in result.stdout
    other = [openssl(), "s_client", "-connect", f"127.0.0.1:{tls_server.port}", "-verify_return_error",
             "-CAfile", str(tls_server.root_pem), "-verify_ip", "10.9.8.7"]  # fmt: skip
    refused = subprocess.run(other, input="", capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode != 0  # the address is not in the certificate


def test_an_actor_call_over_tls(tls_server: TlsServer, tmp_path: Path) -> None:
    out = tls_server.cli.ok("actors", "add", "--role", "municipal_staff", "--municipality", "452017")
    token = next(line.split()[1] for line in out.splitlines() if line.startswith("token "))
    result = tls_server.curl("/v1/policy", "-H", f"Authorization: Bearer {token}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "current-2022" in result.stdout
    refused = run([curl(), "-sS", "-o", os.devnull, "-w", "%{http_code}", "--cacert", str(tls_server.root_pem),
                   f"{tls_server.base}/v1/policy"])  # fmt: skip
    assert refused.stdout == "401"


def test_the_tls_server_certificate(tls_server: TlsServer, tmp_path: Path) -> None:
    chain = tls_server.cli.home / "tls" / "tls-server.pem"
    leaf, issuer = x509.load_pem_x509_certificates(chain.read_bytes())
    leaf_pem = tmp_path / "leaf.pem"
    leaf_pem.write_bytes(leaf.public_bytes(Encoding.PEM))
    assert pkilint_errors(leaf_pem) == ""
    verified = run([openssl(), "verify", "-purpose", "sslserver", "-CAfile", str(tls_server.root_pem),
                    "-untrusted", str(tls_server.issuing_pem), str(leaf_pem)])  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert issuer.subject == x509.load_pem_x509_certificate(tls_server.issuing_pem.read_bytes()).subject
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["koshin.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1"), ip_address("::1")]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment
    served = subprocess.run([openssl(), "s_client", "-connect", f"127.0.0.1:{tls_server.port}", "-showcerts"],
                            input="", capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert x509.load_pem_x509_certificates(served.stdout.encode())[0] == leaf


def test_the_server_key_is_on_the_token_and_nowhere_else(tls_server: TlsServer) -> None:
    keys = json.loads(tls_server.cli.ok("keys", "audit", "--json"))
    text = json.dumps(keys)
    assert "koshin-tls-server" in text
    findings, scanned = scan_tree(tls_server.cli.home)
    assert scanned > 0 and findings == []
    assert not (tls_server.cli.home / "tls" / "run" / "token.pin").exists()  # only while stunnel starts
    config = (tls_server.cli.home / "tls" / "run" / "stunnel.conf").read_text()
    pin = (tls_server.cli.home / "secrets" / "user.pin").read_text().strip()
    assert "pkcs11:" in config and pin not in config
    assert pin not in (tls_server.cli.home / "tls" / "run" / "stunnel.log").read_text()
    assert pin not in tls_server.log.read_text()


def test_ocsp_over_tls(tls_server: TlsServer, tmp_path: Path) -> None:
    """The OCSP status of the server's own certificate, asked over TLS."""
    leaf_pem = tmp_path / "leaf.pem"
    chain = (tls_server.cli.home / "tls" / "tls-server.pem").read_bytes()
    leaf_pem.write_bytes(x509.load_pem_x509_certificates(chain)[0].public_bytes(Encoding.PEM))
    request, response = tmp_path / "req.der", tmp_path / "resp.der"
    made = run([openssl(), "ocsp", "-issuer", str(tls_server.issuing_pem), "-cert", str(leaf_pem),
                "-reqout", str(request)])  # fmt: skip
    assert made.returncode == 0, made.stderr
    posted = tls_server.curl("/ocsp/user-authentication", "--data-binary", f"@{request}", "-H",
                             "Content-Type: application/ocsp-request", "-o", str(response))  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    checked = run([openssl(), "ocsp", "-reqin", str(request), "-respin", str(response), "-CAfile",
                   str(tls_server.root_pem), "-verify_other", str(tls_server.issuing_pem), "-resp_text"])  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Response verify OK" in checked.stderr + checked.stdout and "Cert Status: good" in checked.stdout
    serial = f"{x509.load_pem_x509_certificate(leaf_pem.read_bytes()).serial_number:X}"
    assert serial in checked.stdout.replace(":", "").upper()


PROOFING = {"resident_number": "MZK-0001", "operation": "cert_issue", "channel": "counter_in_person",
            "evidence": ["photo_id_document", "resident_register_match"]}  # fmt: skip


def _staff(tls_server: TlsServer) -> str:
    out = tls_server.cli.ok("actors", "add", "--role", "municipal_staff", "--municipality", "452017")
    return next(line.split()[1] for line in out.splitlines() if line.startswith("token "))


def test_est_over_tls(tls_server: TlsServer, token: TokenSession, tmp_path: Path) -> None:
    made = tls_server.curl("/v1/proofing-events", "-H", f"Authorization: Bearer {_staff(tls_server)}", "-H",
                           "Content-Type: application/json", "-d", json.dumps(PROOFING))  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    event = json.loads(made.stdout)

    cacerts_b64, cacerts = tmp_path / "cacerts.b64", tmp_path / "cacerts.p7"
    assert tls_server.curl("/.well-known/est/cacerts", "-o", str(cacerts_b64)).returncode == 0
    assert run([openssl(), "base64", "-d", "-in", str(cacerts_b64), "-out", str(cacerts)]).returncode == 0
    printed = run([openssl(), "pkcs7", "-inform", "DER", "-print_certs", "-in", str(cacerts)])
    assert printed.returncode == 0 and "CN = koshin Root CA" in printed.stdout, printed.stderr
    der, b64 = tmp_path / "csr.der", tmp_path / "csr.b64"
    der.write_bytes(token_csr(token, "tls-est-holder-p256", KeyAlgorithm.P256).public_bytes(Encoding.DER))
    assert run([openssl(), "base64", "-in", str(der), "-out", str(b64)]).returncode == 0
    issued_b64, issued_der, leaf = tmp_path / "issued.b64", tmp_path / "issued.p7", tmp_path / "leaf.pem"
    enrolled = tls_server.curl("/.well-known/est/simpleenroll", "--data-binary", f"@{b64}", "-H",
                               "Content-Type: application/pkcs10", "-u", f"{event['id']}:{event['enrollment_secret']}",
                               "-o", str(issued_b64))  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    assert run([openssl(), "base64", "-d", "-in", str(issued_b64), "-out", str(issued_der)]).returncode == 0
    assert run([openssl(), "pkcs7", "-inform", "DER", "-in", str(issued_der), "-print_certs",
                "-out", str(leaf)]).returncode == 0  # fmt: skip
    verified = run([openssl(), "verify", "-CAfile", str(tls_server.root_pem), "-untrusted",
                    str(tls_server.issuing_pem), str(leaf)])  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replay = tls_server.curl("/.well-known/est/simpleenroll", "--data-binary", f"@{b64}", "-u",
                             f"{event['id']}:{event['enrollment_secret']}")  # fmt: skip
    assert replay.returncode != 0 and "proofing-event-unusable" in replay.stdout


def _cmp(tls_server: TlsServer, holder: HolderToken, ca: str, *args: str) -> subprocess.CompletedProcess[str]:
    root = str(tls_server.root_pem)
    command = [openssl(), "cmp", "-server", f"127.0.0.1:{tls_server.port}", "-path", f".well-known/cmp/p/{ca}",
               "-tls_used", "-tls_trusted", root, "-trusted", root, *args]  # fmt: skip
    return run(command, env=holder.env, timeout=60)


def test_cmp_over_tls(tls_server: TlsServer, tmp_path: Path) -> None:
    holder = HolderToken.create(tmp_path)
    genm = _cmp(tls_server, holder, "signature", "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x")
    assert genm.returncode == 0 and "received GENP" in genm.stdout + genm.stderr, genm.stdout + genm.stderr
    event = json.loads(tls_server.curl("/v1/proofing-events", "-H", f"Authorization: Bearer {_staff(tls_server)}",
                       "-H", "Content-Type: application/json", "-d", json.dumps(PROOFING)).stdout)  # fmt: skip
    key, leaf = holder.new_key("tls-cmp-holder"), tmp_path / "ir.pem"
    ir = _cmp(tls_server, holder, "user-authentication", "-engine", "pkcs11", "-keyform", "ENGINE", "-cmd", "ir",
              "-ref", event["id"], "-secret", f"pass:{event['enrollment_secret']}", "-newkey", key,
              "-subject", "/CN=holder", "-certout", str(leaf))  # fmt: skip
    assert ir.returncode == 0, ir.stdout + ir.stderr
    verified = run([openssl(), "verify", "-CAfile", str(tls_server.root_pem), "-untrusted",
                    str(tls_server.issuing_pem), str(leaf)])  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_stunnel_is_restarted_when_it_dies(tls_server: TlsServer) -> None:
    before = tls_server.stunnel_pids()
    assert len(before) == 1
    os.kill(before[0], signal.SIGKILL)
    for _ in range(100):  # the watcher logs the restart just after the new stunnel listens: wait for both
        after = tls_server.stunnel_pids()
        restarted = "stunnel restarted (1 of 3)" in tls_server.log.read_text()
        if restarted and after and after != before and tls_server.curl("/healthz").returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"stunnel was not restarted: {tls_server.log.read_text()[-2000:]}")


def test_a_restart_reuses_the_certificate_and_a_new_name_reissues(tls_server: TlsServer) -> None:
    """Run last in this module: it restarts the server (same port, same home)."""
    chain = tls_server.cli.home / "tls" / "tls-server.pem"
    first = x509.load_pem_x509_certificates(chain.read_bytes())[0]
    _stop(tls_server.process)
    tls_server.process = _start(tls_server.cli, tls_server.port, tls_server.log, "koshin.test")
    _wait_listening(tls_server.process, tls_server.port, tls_server.log)
    assert x509.load_pem_x509_certificates(chain.read_bytes())[0] == first
    assert f"TLS certificate reused: serial {first.serial_number:x}" in tls_server.log.read_text()
    _stop(tls_server.process)
    tls_server.process = _start(tls_server.cli, tls_server.port, tls_server.log, "koshin.test", "api.koshin.test")
    _wait_listening(tls_server.process, tls_server.port, tls_server.log)
    second = x509.load_pem_x509_certificates(chain.read_bytes())[0]
    assert second.serial_number != first.serial_number
    assert second.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == first.public_key(
    ).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # same token key  # fmt: skip
    assert "api.koshin.test" in str(second.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


# -- credentials in-process (no stunnel) ----------------------------------------------------------------------
def test_credentials_are_reused_until_revoked(softhsm: SoftHsm, tmp_path: Path) -> None:
    rt = make_runtime(softhsm, tmp_path / "home", f"sqlite:///{tmp_path / 'koshin.db'}", "tls-unit-")
    try:
        first = ensure_credentials(rt, ["koshin.test"])
        assert not first.reused and rt.session.has_key(key_label(rt))
        assert "object=tls-unit-tls-server" in first.key_uri and "pin" not in first.key_uri
        again = ensure_credentials(rt, ["koshin.test"])
        assert again.reused and again.certificate == first.certificate
        assert rt.repo.certificate(first.certificate.serial_number).profile == "tls-server"
        spki = rt.session.public_key_der(key_label(rt))
        revoke(rt, OPERATOR, first.certificate.serial_number, RevocationAsk("keyCompromise"))  # REVOKE-INFRA: re-keyed
        renewed = ensure_credentials(rt, ["koshin.test"])
        assert renewed.reused and renewed.certificate.serial_number != first.certificate.serial_number
        assert rt.session.public_key_der(key_label(rt)) != spki  # a new key on the token, not a reissue
        assert renewed.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != spki
        assert rt.repo.certificate(first.certificate.serial_number).revocation_reason == "keyCompromise"
        renamed = ensure_credentials(rt, ["koshin.test", "192.0.2.7"])  # a new name: reissued, old one superseded
        assert not renamed.reused and ip_address("192.0.2.7") in renamed.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.IPAddress)
        old = rt.repo.certificate(renewed.certificate.serial_number)
        assert old.status == "revoked" and old.revocation_reason == "superseded"
        assert ensure_credentials(rt, ["192.0.2.7", "koshin.test"]).reused  # the order of names does not matter
    finally:
        rt.close()


def test_tls_names() -> None:
    names = server_names(["Koshin.Test.", "192.0.2.1", "127.0.0.1"])
    assert names.dns == ("koshin.test",) and [str(a) for a in names.ip] == ["127.0.0.1", "::1", "192.0.2.1"]
    for bad in ("localhost", "two words.test", "a..b"):
        with pytest.raises(ConfigurationError, match="--tls-name"):
            server_names([bad])


def test_stunnel_config_has_no_pin(tmp_path: Path) -> None:
    spec = StunnelSpec("127.0.0.1", 8443, tmp_path / "b.sock", tmp_path / "c.pem", "pkcs11:token=t;object=k",
                       "/usr/lib/softhsm/libsofthsm2.so", "s3cret-PIN", tmp_path)  # fmt: skip
    config = render_config(spec)
    assert "s3cret-PIN" not in config and f"pin-source=file:{tmp_path / 'token.pin'}" in config
    assert "engineId = pkcs11" in config and "sslVersionMin = TLSv1.2" in config
