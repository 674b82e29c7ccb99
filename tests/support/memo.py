"""Session-wide worlds built once per key, whatever order the tests come in.

A parametrized session fixture (``api[sqlite]``, ``pki[rsa2048]``) is torn down whenever the next test
wants another parameter, and set up again when one wants it back. pytest orders a whole run to avoid that,
but a worker of pytest-xdist runs the files it is sent in their own order, so the same world would be built
twice: new keys under the same labels on the one token. The fixtures ask a memo instead: the first test to
want a world builds it, the session's end closes everything built (in reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest

from tests.conftest import SoftHsm

T = TypeVar("T")


class Memo:
    def __init__(self) -> None:
        self._stack = ExitStack()
        self._made: dict[Hashable, Any] = {}

    def get(self, key: Hashable, make: Callable[[ExitStack], T]) -> T:
        """The world under ``key``, made on first use; ``make`` registers its clean-up on the stack."""
        if key not in self._made:
            self._made[key] = make(self._stack)
        value: T = self._made[key]
        return value

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def memo(softhsm: SoftHsm) -> Iterator[Memo]:
    """Worlds on the session token (closed before the token's fixtures end)."""
    made = Memo()
    yield made
    made.close()


@pytest.fixture(scope="session")
def pg_memo(memo: Memo, pg_server: object) -> Iterator[Memo]:
    """Worlds that also use the session PostgreSQL server (closed before the server stops)."""
    made = Memo()
    yield made
    made.close()
