"""Processes for measurements: a fork server that has imported koshin but never loaded the PKCS#11 module, so
each worker starts in milliseconds and loads the module itself (SoftHSM is initialised once per process)."""

from __future__ import annotations

import importlib
import multiprocessing
from multiprocessing.context import ForkServerContext
from typing import Any

PRELOAD = ["bench.workers", "bench.setup", "service.runtime", "service.flows.card_issuance", "httpx"]
_context: ForkServerContext | None = None


def mp_context() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _call(job: str, params: dict[str, Any]) -> Any:
    module, name = job.split(":")
    return getattr(importlib.import_module(module), name)(params)


def in_child(job: str, params: dict[str, Any], timeout: float = 3600.0) -> Any:
    """Run ``job`` (``"package.module:function"``) with ``params`` in a fresh process; return its result."""
    with mp_context().Pool(1) as pool:
        return pool.apply_async(_call, (job, params)).get(timeout)
