"""A throwaway PostgreSQL server for the PostgreSQL runs (bench/pgserver.py, which the test suite uses too).
Without PostgreSQL installed the PostgreSQL runs are skipped with a message, never silently."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.pgserver import PgServer, find_bindir

_server: Any = None


@contextmanager
def throwaway_server(ctx: BenchContext) -> Iterator[str | None]:
    global _server
    if find_bindir() is None:
        ctx.skip("postgresql", "PostgreSQL is not installed: PostgreSQL runs skipped")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="koshin-bench-pg-") as base, PgServer(Path(base)) as server:
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
