"""Worker processes that run one operation in a loop, started together, measured together.

Every measurement runs in worker processes (``bench.child``), never in the harness itself:
python-pkcs11 0.10.1 initialises the module without CKF_OS_LOCKING_OK, so koshin serialises a process's token
calls behind one lock and scales with processes (README, "Threads and the token"). The harness never loads the
PKCS#11 module, so it can create tokens (softhsm2-util) at any time.

A job is ``"package.module:function"``; the function takes the parameters and returns an ``Operation``:
``op()`` does one unit of work and returns its latency in seconds (or None), ``close()`` releases it.
"""

from __future__ import annotations

import contextlib
import importlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class Operation:
    op: Callable[[], float | None]
    close: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class RunResult:
    """One run of every worker: ops done, the slowest worker's elapsed time, latencies (s), peak RSS (KiB)."""

    count: int
    elapsed: float
    latencies: list[float]
    peak_rss_kib: list[int]

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


class WorkerFailed(RuntimeError):
    pass


def _worker(job: str, params: dict[str, Any], index: int, conn: Connection) -> None:
    try:
        module, name = job.split(":")
        setup: Callable[[dict[str, Any], int], Operation] = getattr(importlib.import_module(module), name)
        operation = setup(params, index)
        operation.op()  # warm-up: first-call costs (imports, caches, connections) are not measured
        conn.send(("ready", None))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            mode, amount = message
            latencies: list[float] = []
            count, start = 0, time.perf_counter()
            deadline = start + amount
            while (count < amount) if mode == "count" else (time.perf_counter() < deadline):
                latency = operation.op()
                if latency is not None:
                    latencies.append(latency)
                count += 1
            elapsed = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            conn.send(("done", (count, elapsed, latencies, rss)))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        operation.close()


class WorkerPool:
    """``workers`` spawned processes running the same job; ``run()`` starts them together and waits."""

    def __init__(self, job: str, params: dict[str, Any], workers: int, *, timeout: float = 600.0) -> None:
        from bench.child import mp_context

        context = mp_context()
        self.timeout = timeout
        self._conns: list[Connection] = []
        self._procs = []
        # One after the other: a worker's set-up may write to the token (a session object, a key it makes), and
        # SoftHSM skips a token file being rewritten when another process initialises the module ("no single
        # token labelled ..."). Measuring starts only when all are ready, so this costs set-up time only.
        for index in range(workers):
            parent, child = context.Pipe()
            proc = context.Process(target=_worker, args=(job, params, index, child), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
            self._receive(parent)

    def _receive(self, conn: Connection) -> Any:
        if not conn.poll(self.timeout):
            raise WorkerFailed(f"a worker did not answer within {self.timeout:.0f} s")
        kind, value = conn.recv()
        if kind == "error":
            raise WorkerFailed(str(value))
        return value

    def run(self, *, seconds: float | None = None, count: int | None = None) -> RunResult:
        message = ("duration", seconds) if seconds is not None else ("count", count)
        for conn in self._conns:
            conn.send(message)
        answers = [self._receive(conn) for conn in self._conns]
        return RunResult(
            count=sum(a[0] for a in answers),
            elapsed=max(a[1] for a in answers),
            latencies=[x for a in answers for x in a[2]],
            peak_rss_kib=[a[3] for a in answers],
        )

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure(
    job: str, params: dict[str, Any], workers: int, runs: int, *, seconds: float | None = None, count: int | None = None
) -> list[RunResult]:
    """``runs`` runs of ``workers`` processes on one job (one warm-up op per worker before the first)."""
    with WorkerPool(job, params, workers) as pool:
        return [pool.run(seconds=seconds, count=count) for _ in range(runs)]
