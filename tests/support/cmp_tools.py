"""The CMP client side of test_cmp.py: OpenSSL's own `openssl cmp` with the holder's keys on a SoftHSM token
reached through OpenSSL's pkcs11 engine (libengine-pkcs11-openssl, libp11).

The holder token lives in its own SoftHSM directory (its own softhsm2.conf), so the openssl, pkcs11-tool and
softhsm2-util subprocesses never touch the token the test process has loaded. Keys are made on it with
``pkcs11-tool --keypairgen`` (never extractable), and openssl names them by PKCS#11 URI (RFC 7512).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from hsm import admin
from tests.support.helpers import openssl, openssl_verify, run

if TYPE_CHECKING:  # live_fixture imports the api conftest, which imports live_fixture: no runtime cycle
    from tests.support.live_fixture import Live

ENGINE_PATHS = ("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so", "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so")
LABEL = "cmp-holder"


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_client() -> tuple[str, str]:
    """The SoftHSM module and the pkcs11 engine; missing tools fail under CI and skip elsewhere."""
    for tool in ("openssl", "softhsm2-util", "pkcs11-tool"):
        if shutil.which(tool) is None:
            _skip_or_fail(f"{tool} is not installed (Debian packages openssl, softhsm2, opensc)")
    engine = next((p for p in ENGINE_PATHS if Path(p).exists()), None)
    module = admin.find_softhsm()
    if engine is None or module is None:
        _skip_or_fail("the OpenSSL pkcs11 engine or SoftHSM is missing (libengine-pkcs11-openssl, softhsm2)")
    assert engine is not None and module is not None
    return module, engine


@dataclass(frozen=True)
class HolderToken:
    module: str
    env: dict[str, str]  # SOFTHSM2_CONF and OPENSSL_CONF for the subprocesses
    pin: str

    @classmethod
    def create(cls, home: Path) -> HolderToken:
        module, engine = require_client()
        (home / "tokens").mkdir()
        conf = home / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
        pin = secrets.token_hex(4)
        openssl_conf = home / "openssl.cnf"
        openssl_conf.write_text(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n"
            "[engine_section]\npkcs11 = pkcs11_section\n"
            f"[pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {engine}\nMODULE_PATH = {module}\n"
            f"PIN = {pin}\ninit = 0\n"
        )
        env = {**os.environ, "SOFTHSM2_CONF": str(conf), "OPENSSL_CONF": str(openssl_conf)}
        token = cls(module, env, pin)
        token.run(["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--so-pin", secrets.token_hex(4),
                   "--pin", pin])  # fmt: skip
        return token

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        result = run(args, env=self.env, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def new_key(self, label: str, key_type: str = "EC:prime256v1") -> str:
        """A key pair generated on the holder token; returns the private key's PKCS#11 URI."""
        self.run(["pkcs11-tool", "--module", self.module, "--token-label", LABEL, "--login", "--pin", self.pin,
                  "--keypairgen", "--key-type", key_type, "--label", label, "--id", secrets.token_hex(8)])  # fmt: skip
        return f"pkcs11:token={LABEL};object={label};type=private"

    def csr(self, key_uri: str, out: Path) -> Path:
        """A PKCS#10 request signed on the token (for the REST phone enrollment that precedes kur)."""
        self.run(["openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", key_uri,
                  "-subj", "/CN=holder", "-out", str(out)])  # fmt: skip
        return out

    def cmp(self, base_url: str, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``openssl cmp`` against the live server; the result is returned whatever its exit code."""
        server = base_url.removeprefix("http://")
        command = ["openssl", "cmp", "-server", server, "-path", f".well-known/cmp/p/{profile}",
                   "-engine", "pkcs11", "-keyform", "ENGINE", *args]  # fmt: skip
        return run(command, env=self.env, timeout=60)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def ocsp_text(live: Live, ca: str, leaf: Path) -> str:
    issuer = str(live.issuing_pem[ca])
    result = run([openssl(), "ocsp", "-issuer", issuer, "-cert", str(leaf), "-url", f"{live.base_url}/ocsp/{ca}",
                  "-CAfile", str(live.root_pem), "-verify_other", issuer, "-resp_text"], timeout=30)  # fmt: skip
    assert result.returncode == 0 and "Response verify OK" in output(result), output(result)
    return output(result)


def verified(live: Live, ca: str, leaf: Path) -> x509.Certificate:
    result = openssl_verify(leaf, live.root_pem, live.issuing_pem[ca])
    assert result.returncode == 0 and f"{leaf}: OK" in result.stdout, output(result)
    return x509.load_pem_x509_certificate(leaf.read_bytes())
