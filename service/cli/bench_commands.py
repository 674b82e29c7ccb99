"""``koshin bench``: the benchmark harness (ratios against the token's limit and against real peers)."""

from __future__ import annotations


def bench() -> None:
    """Run benchmark scenarios (work in progress)."""
    raise NotImplementedError
