"""Shared plumbing of the commands: settings, the runtime, output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from service.db.registry_models import Actor
from service.runtime import Runtime, open_runtime
from service.settings import Settings

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def runtime(*, create: bool = False) -> Iterator[Runtime]:
    """Settings are read here, when the command starts, not at import."""
    rt = open_runtime(Settings(), create=create)
    rt.repo = rt.repo.acting(f"cli:{getpass.getuser()}", "ca_operator")
    try:
        yield rt
    finally:
        rt.close()


def print_json(value: Any) -> None:
    console.out(json.dumps(value, indent=2, ensure_ascii=False, default=str), highlight=False)


def operator(rt: Runtime) -> Actor:
    """The CA operator at the CA host (the OS user running the command), as the policy sees an actor."""
    return Actor(name=rt.repo.who.actor, role="ca_operator", token_sha256="", created_at=datetime.now(UTC))
