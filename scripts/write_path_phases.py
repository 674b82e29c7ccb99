"""Time the pipeline's steps one by one, in one process: prepare, the intent transaction, the token signature,
the outcome transaction (what ``koshin bench issue`` measures as a whole).

    .venv/bin/python scripts/write_path_phases.py [--algorithm p256] [--count 300] [--lint]

Works in its own temporary bench home (never KOSHIN_HOME) on SQLite. Prints the median of each step in ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from bench.home import prepare
from bench.setup import BENCH_HOLDER, holder_csr_pem, init_hierarchy
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.issuance_store import Binding, Intent, Outcome, Spend
from service.runtime import open_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="p256")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--lint", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="koshin-phases-") as scratch:
        home = prepare(Path(scratch))
        init_hierarchy({"home": home.root, "algorithm": args.algorithm, "prefix": ""})
        rt = open_runtime(home.settings(args.algorithm, lint=args.lint))
        authority, repo, csr = rt.authority(), rt.repo, holder_csr_pem().encode()
        steps: dict[str, list[float]] = {name: [] for name in ("prepare", "intent tx", "sign", "outcome tx", "total")}
        for _ in range(args.count):
            t0 = time.perf_counter()
            prepared = authority.prepare(IssueRequest("signature", load_csr(csr), BENCH_HOLDER, AssuranceLevel.IAL3))
            t1 = time.perf_counter()
            repo.record_intents(Spend(), [Intent(prepared.intent, Binding())], datetime.now(UTC))
            t2 = time.perf_counter()
            der = authority.sign(prepared).public_bytes(Encoding.DER)
            t3 = time.perf_counter()
            repo.record_outcome(Outcome(issued={prepared.intent.serial: der}), datetime.now(UTC))
            t4 = time.perf_counter()
            for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                steps[name].append(seconds * 1000)
        rt.close()
    print(", ".join(f"{name} {statistics.median(values):.2f} ms" for name, values in steps.items()))


if __name__ == "__main__":
    main()
