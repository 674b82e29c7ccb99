"""Token administration for the embedded SoftHSM default: its own softhsm2.conf, token directory and PINs.

Token creation shells out to ``softhsm2-util`` *before* this process loads the module, because SoftHSM reads
its configuration and token directory when the module is initialised.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from hsm.errors import TokenAdminFailed

DEBIAN_SOFTHSM_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def find_softhsm() -> str | None:
    """Debian's libsofthsm2.so, wherever the architecture put it."""
    for path in (*DEBIAN_SOFTHSM_PATHS, *glob.glob("/usr/lib/*/softhsm/libsofthsm2.so")):
        if os.path.exists(path):
            return path
    return None


def write_private_file(path: Path, text: str) -> None:
    """Create a file readable by its owner only (mode 0600 from the first byte written)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def random_pin(length: int = 24) -> str:
    return secrets.token_urlsafe(length)[:length]


def write_softhsm_conf(home: Path) -> Path:
    """softhsm2.conf under ``home`` pointing at ``home/tokens``; returns its path."""
    tokens = home / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = home / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
    return conf


def softhsm_token_exists(conf: Path, label: str) -> bool:
    result = _softhsm_util(conf, ["--show-slots"])
    labels = (line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.strip().startswith("Label:"))
    return label in labels


def init_softhsm_token(conf: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Initialise a free SoftHSM slot as a token with ``label``, setting its SO and user PINs."""
    _softhsm_util(conf, ["--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", user_pin])


def _softhsm_util(conf: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise TokenAdminFailed("softhsm2-util not found: install the Debian package softhsm2")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    result = subprocess.run([tool, *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TokenAdminFailed(f"softhsm2-util {args[0]} failed: {result.stderr.strip() or result.stdout}")
    return result


def make_device_tokens(conf: Path, name: str, transport_pins: dict[str, str], so_pin: str) -> list[str]:
    """Initialise one token per credential, labelled ``<name>-<credential>``, with a transport user PIN the
    holder replaces. Run before this process loads the module (SoftHSM only sees tokens present at init)."""
    labels = []
    for credential, pin in transport_pins.items():
        labels.append(f"{name}-{credential}")
        init_softhsm_token(conf, labels[-1], so_pin, pin)
    return labels
