"""A throwaway PostgreSQL server for the PostgreSQL runs: the test suite's ``tests/pgserver.py``, loaded from
the source checkout (it is not part of the installed package). Without it, or without PostgreSQL installed,
the PostgreSQL runs are skipped with a message, never silently."""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.bench.context import BenchContext

CHECKOUT = Path(__file__).resolve().parents[2]
_server: Any = None


def _pgserver_module() -> Any:
    if not (CHECKOUT / "tests" / "pgserver.py").exists():
        return None
    if str(CHECKOUT) not in sys.path:
        sys.path.append(str(CHECKOUT))
    return importlib.import_module("tests.pgserver")


@contextmanager
def throwaway_server(ctx: BenchContext) -> Iterator[str | None]:
    global _server
    module = _pgserver_module()
    if module is None or module.find_bindir() is None:
        ctx.skip("postgresql", "PostgreSQL or tests/pgserver.py not available: PostgreSQL runs skipped")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="koshin-bench-pg-") as base, module.PgServer(Path(base)) as server:
        _server = server
        try:
            yield str(server.url)
        finally:
            _server = None


def new_database(ctx: BenchContext, name: str) -> str:
    """A fresh database on the bench's server (its SQLAlchemy URL)."""
    if _server is None:
        raise RuntimeError("no PostgreSQL server is running")
    return str(_server.create_database(f"bench_{name}"))
