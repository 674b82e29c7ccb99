"""The TLS terminator of ``koshin serve --tls``: Debian's stunnel4, using the token key through the OpenSSL
PKCS#11 engine (libengine-pkcs11-openssl), in front of uvicorn on a Unix socket.

Python's ssl module (and so uvicorn) can only load a private key from a file; stunnel loads it with
``engineId = pkcs11`` and an RFC 7512 URI, so every TLS handshake signature is made on the token.

- The generated configuration holds no PIN. The engine reads the user PIN from ``pin-source=file:`` — a
  0600 file in a 0700 directory that exists only while stunnel starts (it is removed once stunnel serves,
  and written again for a restart). stunnel's own configuration log would print an ``engineCtrl PIN:``.
- uvicorn listens on ``KOSHIN_HOME/tls/run/backend.sock`` (directory 0700), so nothing bypasses TLS over TCP.
- koshin supervises stunnel: it is restarted when it dies (at most ``MAX_RESTARTS`` times), killed with its
  parent (PR_SET_PDEATHSIG), and stopped when ``koshin serve`` stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hsm import admin
from service.errors import ConfigurationError

log = logging.getLogger("koshin.tls")
MAX_RESTARTS = 3
START_TIMEOUT = 15.0  # seconds for stunnel to log in to the token and listen
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class StunnelSpec:
    host: str
    port: int
    backend_socket: Path
    chain_pem: Path
    key_uri: str  # RFC 7512, without a PIN
    module_path: str  # the PKCS#11 module (SoftHSM or the HSM vendor's)
    pin: str
    directory: Path  # KOSHIN_HOME/tls/run: config, PIN file while starting, log

    @property
    def config_path(self) -> Path:
        return self.directory / "stunnel.conf"

    @property
    def pin_path(self) -> Path:
        return self.directory / "token.pin"

    @property
    def log_path(self) -> Path:
        return self.directory / "stunnel.log"


def stunnel_binary() -> str:
    for name in ("stunnel4", "stunnel"):
        path = shutil.which(name)
        if path:
            return path
    raise ConfigurationError("serve --tls needs stunnel: install the Debian package stunnel4 (make run does)")


def _conf_value(value: str) -> str:
    if any(c in value for c in "\n\r") or value != value.strip():
        raise ConfigurationError(f"value not usable in a stunnel configuration: {value!r}")
    return value


def render_config(spec: StunnelSpec) -> str:
    """stunnel.conf: TLS 1.2+ with ECDHE only (the key signs, never decrypts); no PIN in it."""
    key = f"{spec.key_uri};pin-source=file:{spec.pin_path}"
    lines = [
        "foreground = yes",
        "pid =",
        "syslog = no",
        "debug = warning",
        "engine = pkcs11",
        f"engineCtrl = MODULE_PATH:{_conf_value(spec.module_path)}",
        "[koshin]",
        f"accept = {_conf_value(spec.host)}:{spec.port}",
        f"connect = {_conf_value(str(spec.backend_socket))}",
        f"cert = {_conf_value(str(spec.chain_pem))}",
        "engineId = pkcs11",
        f"key = {_conf_value(key)}",
        "sslVersionMin = TLSv1.2",
        "ciphers = ECDHE+AESGCM:ECDHE+CHACHA20",
        "options = NO_RENEGOTIATION",
    ]
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Terminator:
    """One supervised stunnel process; ``on_give_up`` is called when it keeps dying."""

    def __init__(self, spec: StunnelSpec, on_give_up: Callable[[], None]) -> None:
        self.spec, self.on_give_up = spec, on_give_up
        self.process: subprocess.Popen[bytes] | None = None
        self.failed = False
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="koshin-stunnel", daemon=True)

    def start(self) -> None:
        self.spec.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.spec.directory, 0o700)
        self.spec.config_path.write_text(render_config(self.spec), encoding="utf-8")
        self._launch()
        self._watcher.start()

    def _launch(self) -> None:
        binary = stunnel_binary()
        admin.write_private_file(self.spec.pin_path, self.spec.pin)  # no newline: the engine reads it verbatim
        try:
            with self.spec.log_path.open("ab") as out:
                self.process = subprocess.Popen(
                    [binary, str(self.spec.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            self._await_listening()
        finally:
            self.spec.pin_path.unlink(missing_ok=True)

    def _await_listening(self) -> None:
        assert self.process is not None  # noqa: S101 - set by _launch
        host = "127.0.0.1" if self.spec.host in ("0.0.0.0", "") else self.spec.host  # noqa: S104
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigurationError(f"stunnel exited with {self.process.returncode}: {self._log_tail()}")
            if _listening(host, self.spec.port):
                return
            time.sleep(0.1)
        self.process.terminate()
        raise ConfigurationError(f"stunnel did not listen on {self.spec.port} in {START_TIMEOUT}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.spec.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line for line in lines[-8:] if "LOG" in line) or "(see the stunnel log)"

    def _watch(self) -> None:
        restarts = 0
        while not self._stopping.is_set():
            process = self.process
            if process is None or process.poll() is None:
                self._stopping.wait(0.5)
                continue
            if self._stopping.is_set():
                return
            log.error("stunnel exited with %s; log %s", process.returncode, self.spec.log_path)
            if restarts >= MAX_RESTARTS:
                self.failed = True
                self.on_give_up()
                return
            restarts += 1
            try:
                self._launch()
                log.warning("stunnel restarted (%d of %d)", restarts, MAX_RESTARTS)
            except ConfigurationError as exc:
                log.error("stunnel restart failed: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.spec.pin_path.unlink(missing_ok=True)
