"""Scenario ``incident``: a mass suspension the size of Estonia's ROCA response (760,000 cards on 2017-11-03) and
beyond: a million signature certificates put on hold by ``koshin incident``'s own code, then every CRL shard and
the complete CRL published; the time, the peak RSS of the process, the CRL sizes, and ``openssl verify
-crl_check`` of real certificates among them against the shard CRL each names.

The million rows are copies of a few really issued certificates under new serials (service/db/synthetic.py):
issuing a million through the pipeline would measure issuance, which ``wave`` does. One run per invocation.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.child import in_child
from bench.context import BenchContext
from bench.home import BenchHome
from bench.setup import BENCH_HOLDER, holder_csr_pem
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.db.incident_store import IncidentQuery
from service.db.registry_models import Actor
from service.flows.incident import Predicate, run_incident
from service.flows.issuance import issue_for_operator
from service.provisioning import provision
from service.runtime import Runtime, open_runtime

SCENARIO = "incident"
SIZE, QUICK_SIZE = 1_000_000, 2_000
REAL = 4  # really issued certificates among the copies: the sample openssl verifies
LE_SHARD_LIMIT = 70 * 1024 * 1024  # Let's Encrypt keeps each CRL shard under 70 MB


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _openssl_says_revoked(rt: Runtime, cert: x509.Certificate, crl_der: bytes, scratch: Path) -> bool:
    chain = {r.role: x509.load_der_x509_certificate(r.certificate_der) for r in rt.ca_records()
             if r.role == "root" or r.name == "signature"}  # fmt: skip
    (scratch / "root.pem").write_bytes(chain["root"].public_bytes(Encoding.PEM))
    (scratch / "ca.pem").write_bytes(next(c for role, c in chain.items() if role != "root").public_bytes(Encoding.PEM))
    (scratch / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (scratch / "shard.pem").write_bytes(x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
    done = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", str(scratch / "root.pem"), "-untrusted",
                           str(scratch / "ca.pem"), "-CRLfile", str(scratch / "shard.pem"), str(scratch / "cert.pem")],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    return done.returncode != 0 and "certificate revoked" in done.stdout + done.stderr


def incident_run(params: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: issue the sample, copy it to ``count`` rows, suspend them all, publish, verify."""
    home = BenchHome(params["home"])
    settings = home.settings(params["algorithm"], database_url=home.sqlite_url(params["algorithm"], "-incident"),
                             prefix="incident-", lint=False)  # fmt: skip
    rt = open_runtime(settings)
    try:
        provision(rt)
        since = datetime.now(UTC).replace(microsecond=0)
        csr = load_csr(holder_csr_pem(params["algorithm"]).encode())
        real = [issue_for_operator(rt, IssueRequest("signature", csr, BENCH_HOLDER, AssuranceLevel.IAL3))
                for _ in range(REAL)]  # fmt: skip
        shards = rt.profiles.hierarchy.issuing["signature"].crl_shards
        started = time.perf_counter()
        rt.repo.clone_certificates(real[0].record.serial_hex, params["count"] - REAL, shards)
        seeded = time.perf_counter() - started
        operator = Actor(name="bench-operator", role="ca_operator", token_sha256="", created_at=datetime.now(UTC))
        predicate = Predicate(IncidentQuery(issuer="signature", issued_from=since - timedelta(seconds=1)))
        before = _rss_mib()
        outcome = run_incident(rt, operator, "bench-roca", "suspend", predicate, batch=5000)
        peak = _rss_mib()
        crls = [c for c in outcome.crls if c["shard"] is not None]
        sizes = [len(rt.repo.latest_crl("signature", int(str(c["shard"]))).crl_der) for c in crls]  # type: ignore[union-attr]
        complete = rt.repo.latest_crl("signature")
        publication = max(float(str(c["seconds"])) for c in outcome.crls)
        with tempfile.TemporaryDirectory() as scratch:
            verified = []
            for issued in real:
                shard_crl = rt.repo.latest_crl("signature", issued.record.crl_shard)
                der = shard_crl.crl_der if shard_crl is not None else b""
                verified.append(_openssl_says_revoked(rt, issued.certificate, der, Path(scratch)))
        return {"changed": outcome.changed, "seconds": outcome.seconds, "publication_seconds": publication,
                "seed_seconds": seeded, "rss_before_mib": before, "peak_mib": peak, "shards": len(crls),
                "shard_bytes_max": max(sizes), "shard_bytes_total": sum(sizes),
                "complete_bytes": len(complete.crl_der) if complete else 0, "verified": verified}  # fmt: skip
    finally:
        rt.close()


def run(ctx: BenchContext) -> None:
    count = QUICK_SIZE if ctx.quick else SIZE
    algorithm = "rsa2048" if "rsa2048" in ctx.algorithms else ctx.algorithms[0]
    found = in_child(f"{__name__}:incident_run", {"home": ctx.home.root, "algorithm": algorithm, "count": count})
    if not all(found["verified"]):
        raise RuntimeError(f"openssl verify -crl_check did not report every sample revoked: {found['verified']}")
    common = {"algorithm": algorithm, "certificates": count}
    label = f"{count // 1000}k" if count < 1_000_000 else f"{count // 1_000_000}M"
    result = ctx.add(SCENARIO, f"suspend {label} time", "s", [found["seconds"]], **common)
    result.extra.update(changed=found["changed"], publication_s=round(found["publication_seconds"], 2),
                        seed_s=round(found["seed_seconds"], 1), openssl_verified=len(found["verified"]))  # fmt: skip
    ctx.add(SCENARIO, f"suspend {label} rate", "/s", [found["changed"] / found["seconds"]], **common)
    rss = ctx.add(SCENARIO, f"suspend {label} peak RSS", "MiB", [found["peak_mib"]], **common)
    rss.extra.update(rss_before_mib=round(found["rss_before_mib"], 1))
    shard = ctx.add(SCENARIO, f"largest of {found['shards']} shards", "MiB",
                    [found["shard_bytes_max"] / 2**20], **common)  # fmt: skip
    shard.extra.update(shards_total_mib=round(found["shard_bytes_total"] / 2**20, 2),
                       complete_crl_mib=round(found["complete_bytes"] / 2**20, 2),
                       le_shard_limit_mib=LE_SHARD_LIMIT // 2**20)  # fmt: skip
