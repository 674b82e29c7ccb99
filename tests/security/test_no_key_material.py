"""No private key material anywhere koshin writes or prints, and its secrets are owner-only.

Runs the real ``koshin`` command once per module against a fresh embedded home (KOSHIN_HOME=<tmp>/home,
SoftHSM under the home, every other KOSHIN_* variable and SOFTHSM2_CONF removed from the child environment):
``init``, ``demo``, ``keys audit --json``, ``ca chain``, ``ca list --json``, ``ca crl --ca signature``. Then
every file under the home (tokens/, koshin.db, secrets/, crl/) and every command's stdout and stderr is
scanned with tests/security/scan.py for PEM private-key blocks and DER (also base64-wrapped) private keys.
This module always uses koshin's embedded SoftHSM, also when KOSHIN_SECURITY_* points the rest of the suite
at another token. Run: ``.venv/bin/pytest tests/security/test_no_key_material.py``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.scan import Finding, scan_text, scan_tree
from tests.security.target import require_tool, softhsm_module

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm

KOSHIN = Path(sys.executable).parent / "koshin"
COMMANDS = (
    ("init",),
    ("sample",),
    ("demo",),  # every flow: station-made keys injected into cards, phone keys, PIN reset, on a live server
    ("keys", "audit", "--json"),
    ("ca", "chain"),
    ("ca", "list", "--json"),
    ("ca", "crl", "--ca", "signature"),
)


@dataclass(frozen=True)
class Run:
    command: str
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class CliSession:
    home: Path
    env: dict[str, str]
    runs: list[Run]


def run_koshin(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> Run:
    result = subprocess.run(
        [str(KOSHIN), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    return Run(" ".join(args), result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> CliSession:
    softhsm_module()
    require_tool("softhsm2-util")
    assert KOSHIN.exists(), f"{KOSHIN} missing: install the project into the venv (make deps)"
    workdir = tmp_path_factory.mktemp("security-cli")
    home = workdir / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOSHIN_") and k != "SOFTHSM2_CONF"}
    env["KOSHIN_HOME"] = str(home)
    return CliSession(home, env, [run_koshin(args, env, workdir) for args in COMMANDS])


def _report(findings: list[Finding]) -> str:
    return "\n  ".join(["private key material found:", *map(str, findings)])


def test_cli_commands_succeed(cli: CliSession) -> None:
    failed = [f"koshin {r.command}: exit {r.returncode}: {r.stderr[-1500:]}" for r in cli.runs if r.returncode != 0]
    assert not failed, "\n".join(failed)
    assert [r.command for r in cli.runs] == [" ".join(c) for c in COMMANDS]


def test_home_holds_no_private_key_material(cli: CliSession) -> None:
    findings, scanned = scan_tree(cli.home)
    assert not findings, _report(findings)
    names = {p.relative_to(cli.home).parts[0] for p in cli.home.rglob("*") if p.is_file()}
    assert {"tokens", "koshin.db", "secrets"} <= names, f"expected files missing under the home: {sorted(names)}"
    token_objects = list((cli.home / "tokens").rglob("*.object"))
    assert len(token_objects) >= 10, "the token directory holds too few objects to prove anything"
    assert scanned >= len(token_objects) + 3


def test_command_output_holds_no_private_key_material(cli: CliSession) -> None:
    findings = [
        finding
        for run in cli.runs
        for stream, text in (("stdout", run.stdout), ("stderr", run.stderr))
        for finding in scan_text(text, f"koshin {run.command} ({stream})")
    ]
    assert not findings, _report(findings)
    assert "BEGIN CERTIFICATE" in next(r.stdout for r in cli.runs if r.command == "ca chain")


def test_pin_files_are_owner_only(cli: CliSession) -> None:
    secrets = cli.home / "secrets"
    modes = {str(p.relative_to(secrets)): (p.is_dir(), stat.S_IMODE(p.stat().st_mode)) for p in secrets.rglob("*")}
    assert {"user.pin", "so.pin"} <= set(modes), f"PIN files missing: {sorted(modes)}"
    wrong = {name: oct(mode) for name, (is_dir, mode) in modes.items() if mode != (0o700 if is_dir else 0o600)}
    assert not wrong, f"secret files must be mode 0600 and their folders 0700: {wrong}"
    assert stat.S_IMODE(secrets.stat().st_mode) & 0o077 == 0, f"{secrets} is open to group/others"


def test_database_is_owner_only(cli: CliSession) -> None:
    mode = stat.S_IMODE((cli.home / "koshin.db").stat().st_mode)
    assert mode == 0o600, f"koshin.db is mode {oct(mode)}"


def test_token_directory_is_not_world_accessible(cli: CliSession) -> None:
    tokens = cli.home / "tokens"
    paths = [tokens, *tokens.rglob("*")]
    exposed = {str(p.relative_to(cli.home)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}
    exposed = {name: mode for name, mode in exposed.items() if int(mode, 8) & 0o007}
    assert not exposed, f"token files readable/writable by others: {exposed}"
    assert stat.S_IMODE(tokens.stat().st_mode) & 0o077 == 0, "the token directory is open to group/others"


def test_wrong_pin_makes_the_cli_fail_closed(cli: CliSession, tmp_path: Path) -> None:
    """ONE attempt with a wrong KOSHIN_TOKEN_PIN: no signature, no CRL, no fallback to anything in software."""
    target = tmp_path / "must-not-exist.crl"
    env = {**cli.env, "KOSHIN_TOKEN_PIN": "not-the-pin-0000"}
    run = run_koshin(("ca", "crl", "--ca", "signature", "--out", str(target)), env, tmp_path)
    assert run.returncode != 0, f"koshin signed a CRL with a wrong PIN: {run.stdout[-500:]}"
    assert "PinIncorrect" in run.stderr, run.stderr[-500:]
    assert not target.exists(), "a CRL was written although the PIN was wrong"
    assert "CRL #" not in run.stdout
