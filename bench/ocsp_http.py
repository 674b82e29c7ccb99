"""Scenario ``ocsp-http``: nonce-less OCSP over HTTP GET (RFC 5019), one ``koshin serve`` worker against Debian's
``cfssl ocspserve`` serving the very same responses from a file, under the same client harness. koshin reads
each certificate's status from its database for every request and answers from its pre-signed responses;
cfssl answers from memory and knows nothing of revocations after it loaded the file. Skipped, with a message,
where cfssl is not installed."""

from __future__ import annotations

import base64
import shutil
import time
from itertools import cycle
from typing import Any
from urllib.parse import quote

from cryptography.x509 import ocsp

from bench.child import in_child
from bench.context import BenchContext
from bench.home import BenchHome
from bench.http_clients import http_client
from bench.servers import free_port, koshin_serve, running
from bench.setup import BENCH_HOLDER, holder_csr_pem
from bench.workers import Operation, measure
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.ocsp import ocsp_request_der
from ca.profiles import AssuranceLevel
from service.flows.issuance import issue_for_operator
from service.runtime import open_runtime

SCENARIO = "ocsp-http"
CERTIFICATES = 32


def issue_certificates(params: dict[str, Any]) -> tuple[str, list[str]]:
    """In a child: CERTIFICATES signature certificates; (issuing CA name, their nonce-less requests, base64)."""
    home = BenchHome(params["home"])
    rt = open_runtime(home.settings(params["algorithm"], lint=False, port=params["port"]))
    try:
        authority = rt.authority()
        name = authority.profiles.profile("signature").issuing_ca
        issuer = authority.issuers[name].certificate
        csr = load_csr(holder_csr_pem().encode())
        certificates = [
            issue_for_operator(rt, IssueRequest("signature", csr, BENCH_HOLDER, AssuranceLevel.IAL3)).certificate
            for _ in range(CERTIFICATES)
        ]
        return name, [base64.b64encode(ocsp_request_der(c, issuer, nonce=False)).decode() for c in certificates]
    finally:
        rt.close()


def get_client(params: dict[str, Any], index: int) -> Operation:
    """Round robin over the certificates, by GET ``{prefix}/{url-encoded base64}`` (RFC 5019) or POST to
    ``{prefix}`` (RFC 6960 appendix A); every answer must be a successful OCSP response."""
    http = http_client(params["base_url"])
    prefix, post = params["prefix"], params["method"] == "POST"
    ders = [base64.b64decode(encoded) for encoded in params["requests"]]
    paths = cycle([f"{prefix}/{quote(encoded, safe='')}" for encoded in params["requests"]])
    bodies = cycle(ders)
    headers = {"Content-Type": "application/ocsp-request"}

    def op() -> float:
        start = time.perf_counter()
        response = http.post(prefix or "/", content=next(bodies), headers=headers) if post else http.get(next(paths))
        latency = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"OCSP {params['method']}: {response.status_code}")
        if ocsp.load_der_ocsp_response(response.content).response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RuntimeError("OCSP: unsuccessful response")
        return latency

    return Operation(op, http.close)


def run(ctx: BenchContext) -> None:
    cfssl = shutil.which("cfssl")
    if cfssl is None:
        ctx.skip(SCENARIO, "cfssl is not installed (Debian package golang-cfssl; `make test` installs it)")
        return
    for algorithm in ctx.algorithms:
        port = free_port()  # the hierarchy the bench made for ``algorithm`` (prefix ""), in its own database
        seed = {"home": ctx.home.root, "algorithm": algorithm, "port": port}
        ca, requests = in_child(f"{__name__}:issue_certificates", seed)
        settings = ctx.home.settings(algorithm, lint=False, port=port)
        work = ctx.home.root / f"ocsp-http-{algorithm}"
        work.mkdir(exist_ok=True)
        with koshin_serve(ctx.home, settings, 1, port):
            koshin = {"base_url": f"http://127.0.0.1:{port}", "prefix": f"/ocsp/{ca}", "requests": requests}
            with http_client(koshin["base_url"]) as http:  # the responses cfssl will serve, signed by koshin
                responses = [http.get(f"/ocsp/{ca}/{quote(r, safe='')}").content for r in requests]
            for method in ("POST", "GET"):
                runs = measure(f"{__name__}:get_client", {**koshin, "method": method}, 1, ctx.runs,
                               seconds=ctx.seconds)  # fmt: skip
                ctx.add_rates(SCENARIO, f"{algorithm} koshin {method} w1", runs, algorithm=algorithm, workers=1)
        (work / "responses").write_text("".join(base64.b64encode(r).decode() + "\n" for r in responses))
        peer_port = free_port()
        args = [cfssl, "ocspserve", "-address", "127.0.0.1", "-port", str(peer_port),
                "-responses", str(work / "responses"), "-loglevel", "4"]  # fmt: skip
        # cfssl 1.6's GET handler cannot decode a base64 path with '+' in it (Go's QueryUnescape makes it a
        # space), so it is measured by POST, which is what koshin's figure beside it uses too.
        with running(args, {"PATH": "/usr/bin:/bin"}, f"http://127.0.0.1:{peer_port}/", work / "log"):
            peer = {"base_url": f"http://127.0.0.1:{peer_port}", "prefix": "", "requests": requests, "method": "POST"}
            runs = measure(f"{__name__}:get_client", peer, 1, ctx.runs, seconds=ctx.seconds)
            ctx.add_rates(SCENARIO, f"{algorithm} cfssl ocspserve", runs, algorithm=algorithm, workers=1)
