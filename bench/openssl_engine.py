"""OpenSSL with the pkcs11 engine (Debian libengine-pkcs11-openssl) on the bench's SoftHSM token: the
configuration file (engine, module, PIN; optionally a minimal ``[ca]`` for ``openssl ca -gencrl``) and the
RFC 7512 URI of a token key. The PIN goes into the 0600 configuration file, never onto a command line."""

from __future__ import annotations

import glob
from pathlib import Path

from bench.home import BenchHome
from hsm import admin

ENGINE_PATHS = ("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so", "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so")


def engine_path() -> str | None:
    for path in (*ENGINE_PATHS, *glob.glob("/usr/lib/*/engines-3/pkcs11.so")):
        if Path(path).exists():
            return path
    return None


def engine_config(path: Path, home: BenchHome, *, ca_dir: Path | None = None) -> Path:
    module = admin.find_softhsm()  # OpenSSL finds the engine itself, in its ENGINESDIR
    if engine_path() is None or module is None:
        raise RuntimeError("the pkcs11 engine (libengine-pkcs11-openssl) or SoftHSM is not installed")
    text = (
        "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n"
        "[engine_section]\npkcs11 = pkcs11_section\n"
        f"[pkcs11_section]\nengine_id = pkcs11\nMODULE_PATH = {module}\n"
        f"PIN = {home.pin}\ninit = 0\n"
    )
    if ca_dir is not None:
        text += (
            "[ca]\ndefault_ca = bench\n"
            f"[bench]\ndatabase = {ca_dir / 'index.txt'}\ncrlnumber = {ca_dir / 'crlnumber'}\n"
            "default_md = sha256\ndefault_crl_days = 2\n"
        )
    admin.write_private_file(path, text)
    return path


def key_uri(algorithm: str, label: str) -> str:
    return f"pkcs11:token=bench-{algorithm};object={label};type=private"
