"""Scenario ``token-sign``: the raw signature rate of the CA key on the token, 1 and 2 worker processes.
This is the limit every other figure is measured against."""

from __future__ import annotations

import hashlib
from typing import Any

from bench.context import BenchContext
from bench.home import BenchHome
from bench.workers import Operation, measure
from hsm.signing import default_scheme
from service.runtime import open_runtime

SCENARIO = "token-sign"


def setup(params: dict[str, Any], index: int) -> Operation:
    rt = open_runtime(BenchHome(params["home"]).settings(params["algorithm"]))
    issuer = rt.ca_records("issuing")[0]
    scheme = default_scheme(rt.settings.ca_key_algorithm)
    data = hashlib.sha256(b"a TBSCertificate stands in here").digest() * 16  # ~0.5 KiB, a certificate's size

    def op() -> None:
        rt.session.sign(issuer.key_label, data, scheme)

    return Operation(op, rt.close)


def run(ctx: BenchContext) -> None:
    for algorithm in ctx.algorithms:
        for workers in (1, 2):
            params = {"home": ctx.home.root, "algorithm": algorithm}
            runs = measure(f"{__name__}:setup", params, workers, ctx.runs, seconds=ctx.seconds)
            ctx.add_rates(SCENARIO, f"{algorithm} w{workers}", runs, algorithm=algorithm, workers=workers)
