"""Scenario ``ocsp``: OCSP responses per second from the responder core with its status lookup in the
database: freshly signed on the token (requests with a nonce) and pre-signed (nonce-less requests answered from the
responder's pre-signed responses, the status still read for each). One process each."""

from __future__ import annotations

from itertools import cycle
from typing import Any

from bench.context import BenchContext
from bench.home import BenchHome
from bench.setup import BENCH_HOLDER, holder_csr_pem
from bench.workers import Operation, measure
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.ocsp import ocsp_request_der
from ca.profiles import AssuranceLevel
from service.flows.issuance import issue_for_operator
from service.runtime import open_runtime

SCENARIO = "ocsp"
CERTIFICATES = 32


def setup(params: dict[str, Any], index: int) -> Operation:
    rt = open_runtime(BenchHome(params["home"]).settings(params["algorithm"], lint=False))
    authority = rt.authority()
    csr = load_csr(holder_csr_pem().encode())
    issuer = authority.issuers[authority.profiles.profile("signature").issuing_ca].certificate
    certs = [
        issue_for_operator(rt, IssueRequest("signature", csr, BENCH_HOLDER, AssuranceLevel.IAL3)).certificate
        for _ in range(CERTIFICATES)
    ]
    fresh = params["mode"] == "fresh"
    requests = cycle([ocsp_request_der(c, issuer, nonce=fresh) for c in certs])
    responder = rt.ocsp
    for _ in range(0 if fresh else CERTIFICATES):
        responder.respond(next(requests))  # pre-sign

    def op() -> None:
        responder.respond(next(requests))

    return Operation(op, rt.close)


def run(ctx: BenchContext) -> None:
    for algorithm in ctx.algorithms:
        for mode in ("fresh", "cached"):
            params = {"home": ctx.home.root, "algorithm": algorithm, "mode": mode}
            runs = measure(f"{__name__}:setup", params, 1, ctx.runs, seconds=ctx.seconds)
            ctx.add_rates(SCENARIO, f"{algorithm} {mode}", runs, algorithm=algorithm, mode=mode, workers=1)
