"""A throwaway PostgreSQL server for the test suite: initdb into a temp directory, start, hand out URLs, stop.

The server listens on 127.0.0.1 on a free port (trust authentication, user ``koshin``) and on a Unix socket in
its own directory. PostgreSQL refuses to run as root, so under root every server command runs as the ``postgres``
system user that Debian's package creates (``nobody`` when it is absent); the server's directory is then owned
by that user and placed where that user can reach it. Durability is switched off (fsync, synchronous_commit,
full_page_writes): the data is thrown away anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

USER = "koshin"
DATABASE = "koshin_test"
SEARCH_ROOT = Path("/usr/lib/postgresql")
TOOLS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections
START_ATTEMPTS = 3  # a port found free can be taken by someone else before the server binds it
LOG_TAIL_LINES = 40
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PgServerError(RuntimeError):
    """The server could not be set up, started or stopped; the message carries the server log's tail."""


@dataclass(frozen=True)
class RunAs:
    """The account the server commands run as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> RunAs:
        return cls(pwd.getpwuid(os.getuid()).pw_name, os.getuid(), os.getgid())


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: the highest /usr/lib/postgresql/N/bin, else PATH."""
    candidates = sorted(SEARCH_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in TOOLS):
            return bindir
    found = [shutil.which(tool) for tool in TOOLS]
    if all(found) and len({Path(str(path)).resolve().parent for path in found}) == 1:
        return Path(str(found[0])).resolve().parent
    return None


def server_account() -> RunAs:
    """Who runs the server: the current user, or (under root) ``postgres``, else ``nobody``."""
    if os.getuid() != 0:
        return RunAs.current()
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise PgServerError("running as root and neither the 'postgres' nor the 'nobody' user exists")


def traversable_by(path: Path, account: RunAs) -> bool:
    """Whether ``account`` can search every directory from / down to ``path`` (permission bits; ACLs ignored)."""
    if account.uid == 0:
        return True
    groups = set(os.getgrouplist(account.name, account.gid))
    for directory in (path.resolve(), *path.resolve().parents):
        mode = directory.stat()
        if mode.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif mode.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no server log at {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


class PgServer:
    """One PostgreSQL cluster in a temp directory, started on enter and removed on exit.

    >>> with PgServer(tmp_dir) as server:
    ...     engine = make_engine(server.url)
    """

    def __init__(self, base_dir: Path | str | None = None, *, timezone: str = "UTC") -> None:
        bindir = find_bindir()
        if bindir is None:
            raise PgServerError("PostgreSQL (initdb, pg_ctl, postgres) is not installed")
        self.bindir = bindir
        self.account = server_account()
        self.timezone = timezone
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self.root: Path | None = None
        self.port = 0
        self._running = False

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._dir("data")

    @property
    def socket_dir(self) -> Path:
        return self._dir("sock")

    @property
    def log_file(self) -> Path:
        return self._dir("server.log")

    def _dir(self, name: str) -> Path:
        if self.root is None:
            raise PgServerError("the server has not been started")
        return self.root / name

    # -- URLs --------------------------------------------------------------------------------------------
    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) of ``database`` over TCP."""
        if not self._running:
            raise PgServerError("the server is not running")
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    @property
    def dsn(self) -> str:
        """libpq connection string of the maintenance database ``postgres``, for psycopg itself."""
        return f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres connect_timeout=10"

    # -- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.root is not None:
            raise PgServerError("a PgServer starts once")
        atexit.register(self.stop)
        try:
            self.root = self._make_root()
            self._initdb()
            self._start_server()
            self._running = True
            self.create_database(DATABASE)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its directory. Safe to call more than once."""
        atexit.unregister(self.stop)
        root, self.root, self._running = self.root, None, False
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._stop_server(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _make_root(self) -> Path:
        parent: Path | None = self._base_dir
        if parent is not None and not traversable_by(parent, self.account):
            parent = None  # e.g. pytest's /tmp/pytest-of-root (mode 0700) under root: use /tmp itself
        root = Path(tempfile.mkdtemp(prefix="koshin-pg-", dir=parent))  # mode 0700
        if parent is None and not traversable_by(root.parent, self.account):
            shutil.rmtree(root, ignore_errors=True)
            raise PgServerError(f"{root.parent} is not traversable by the user {self.account.name!r}")
        (root / "sock").mkdir(mode=0o700)
        if self.account.uid != os.getuid():
            for path in (root, root / "sock"):
                os.chown(path, self.account.uid, self.account.gid)
        return root

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            "initdb",
        )

    def _start_server(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            options = [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                f"-c timezone={self.timezone}",
            ]
            try:
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-w",
                        "-t",
                        str(START_TIMEOUT),
                        "-o",
                        " ".join(options),
                        "start",
                    ],
                    "pg_ctl start",
                    timeout=START_TIMEOUT + 10,
                )
                return
            except PgServerError:
                if attempt == START_ATTEMPTS or "could not bind" not in _tail(self.log_file):
                    raise
                self._stop_server(self._dir(""))  # the port was taken: the server is gone; make sure

    def _stop_server(self, root: Path) -> None:
        data = root / "data"
        result = self._spawn([str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], root)
        if result.returncode == 0:
            return
        # pg_ctl could not do it: signal the postmaster directly (SIGQUIT is the immediate shutdown).
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    # -- databases ---------------------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with psycopg.connect(self._check_name(name, self.dsn), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever connections still use it."""
        with psycopg.connect(self._check_name(name, self.dsn), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _check_name(self, name: str, dsn: str) -> str:
        if not _NAME.fullmatch(name) or name in {"postgres", "template0", "template1"}:
            raise ValueError(f"not a usable database name: {name!r} (lower-case letters, digits, _)")
        if not self._running:
            raise PgServerError("the server is not running")
        return dsn

    # -- processes ---------------------------------------------------------------------------------------
    def _spawn(
        self, args: Sequence[str], cwd: Path, timeout: float = START_TIMEOUT + 10
    ) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(cwd), TZ="UTC")
        switch = {}
        if self.account.uid != os.getuid():
            switch = {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **switch,
        )

    def _run(self, args: Sequence[str], what: str, timeout: float = START_TIMEOUT + 10) -> None:
        started = time.monotonic()
        try:
            result = self._spawn(args, self._dir(""), timeout)
        except subprocess.TimeoutExpired as exc:
            raise PgServerError(
                f"{what} did not finish within {timeout:.0f} s\n--- server log ({self.log_file}) ---\n"
                f"{_tail(self.log_file)}"
            ) from exc
        if result.returncode != 0:
            raise PgServerError(
                f"{what} failed (exit {result.returncode}, {time.monotonic() - started:.1f} s, "
                f"as user {self.account.name!r}): {' '.join(args)}\n"
                f"--- output ---\n{(result.stdout + result.stderr).strip()}\n"
                f"--- server log ({self.log_file}) ---\n{_tail(self.log_file)}"
            )
