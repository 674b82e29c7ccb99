"""Scenario ``issue``: issuance through the pipeline as the operator (CSR check, prepare, lint or not, the intent
transaction, token signature, the outcome transaction, each with its audit records), lint off and on, 1 and 2
worker processes, on the signature profile (the one with the most extensions: the holder's name, address,
birth date and sex as otherNames)."""

from __future__ import annotations

from typing import Any

from bench.context import BenchContext
from bench.home import BenchHome
from bench.setup import BENCH_HOLDER, holder_csr_pem
from bench.workers import Operation, measure
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.flows.issuance import issue_for_operator
from service.runtime import open_runtime

SCENARIO = "issue"


def setup(params: dict[str, Any], index: int) -> Operation:
    rt = open_runtime(BenchHome(params["home"]).settings(params["algorithm"], lint=params["lint"]))
    csr_pem = holder_csr_pem().encode()

    def op() -> None:
        request = IssueRequest("signature", load_csr(csr_pem), BENCH_HOLDER, AssuranceLevel.IAL3)
        issue_for_operator(rt, request)

    return Operation(op, rt.close)


def run(ctx: BenchContext) -> None:
    for algorithm in ctx.algorithms:
        for lint in (False, True):
            for workers in (1, 2):
                params = {"home": ctx.home.root, "algorithm": algorithm, "lint": lint}
                runs = measure(f"{__name__}:setup", params, workers, ctx.runs, seconds=ctx.seconds)
                name = f"{algorithm} lint {'on' if lint else 'off'} w{workers}"
                ctx.add_rates(SCENARIO, name, runs, algorithm=algorithm, lint=lint, workers=workers)
