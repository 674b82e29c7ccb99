"""Scenario ``crl``: a complete CRL of 10k, 100k and 1M revoked entries signed on the token (``ca.crl``),
its generation time and the peak RSS of the process that made it, beside ``openssl ca -gencrl`` over the
same entries (its index.txt) with the same token key through the pkcs11 engine."""

from __future__ import annotations

import random
import resource
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.child import in_child
from bench.context import BenchContext
from bench.home import BenchHome
from bench.openssl_engine import engine_config, key_uri
from ca.crl import RevokedEntry, build_crl
from ca.hierarchy import signing_key
from service.runtime import open_runtime

SCENARIO = "crl"
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000,)
REASONS = (x509.ReasonFlags.superseded, x509.ReasonFlags.key_compromise, x509.ReasonFlags.unspecified)


def _entries(count: int, seed: int) -> list[RevokedEntry]:
    rng = random.Random(seed)  # noqa: S311 - synthetic serials for a benchmark
    start = datetime(2025, 4, 1, tzinfo=UTC)
    return [
        RevokedEntry(rng.getrandbits(159) | (1 << 158), start + timedelta(seconds=i * 30), REASONS[i % 3])
        for i in range(count)
    ]


def koshin_crl(params: dict[str, Any]) -> list[dict[str, float]]:
    """In a fresh process: build and sign the CRL ``runs`` times; each run's time and the process's peak RSS."""
    rt = open_runtime(BenchHome(params["home"]).settings(params["algorithm"]))
    try:
        record = rt.ca_records("issuing")[0]
        issuer = x509.load_der_x509_certificate(record.certificate_der)
        key = signing_key(rt.session, record.key_label)
        found = []
        for seed in range(params["runs"]):
            entries = _entries(params["count"], seed)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            crl = build_crl(issuer, key, entries, 1, datetime.now(UTC).replace(microsecond=0), timedelta(hours=48))
            der = crl.public_bytes(Encoding.DER)
            elapsed = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            found.append({"seconds": elapsed, "peak_mib": peak / 1024, "before_mib": before / 1024, "bytes": len(der)})
            del entries, crl, der
        return found
    finally:
        rt.close()


def _index_line(entry: RevokedEntry) -> str:
    revoked = entry.revoked_at.strftime("%y%m%d%H%M%SZ")
    reason = "" if entry.reason is x509.ReasonFlags.unspecified else f",{_OPENSSL_REASON[entry.reason]}"
    serial = f"{entry.serial:X}"
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    return f"R\t350101000000Z\t{revoked}{reason}\t{serial}\tunknown\t/CN=holder\n"


_OPENSSL_REASON = {x509.ReasonFlags.superseded: "superseded", x509.ReasonFlags.key_compromise: "keyCompromise"}


def _openssl_crl(ctx: BenchContext, algorithm: str, count: int, seed: int) -> float:
    work = ctx.home.root / f"openssl-ca-{algorithm}"
    work.mkdir(exist_ok=True)
    material = in_child("bench.setup:ca_material", {"home": ctx.home.root, "algorithm": algorithm})
    name, (cert_pem, label) = next(iter(material.items()))  # the first issuing CA, as koshin_crl takes
    (work / "ca.pem").write_text(cert_pem)
    with (work / "index.txt").open("w") as index:
        index.writelines(_index_line(e) for e in _entries(count, seed))
    (work / "crlnumber").write_text("01\n")
    conf = engine_config(work / "openssl.cnf", ctx.home, ca_dir=work)
    args = ["openssl", "ca", "-gencrl", "-config", str(conf), "-engine", "pkcs11", "-keyform", "engine",
            "-keyfile", key_uri(algorithm, label), "-cert", str(work / "ca.pem"), "-out", str(work / "crl.pem"),
            "-crldays", "2", "-md", "sha256"]  # fmt: skip
    env = ctx.home.env(ctx.home.settings(algorithm)) | {"OPENSSL_CONF": str(conf)}
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"openssl ca -gencrl ({name}) failed: {done.stderr.strip()[-400:]}")
    return elapsed


def run(ctx: BenchContext) -> None:
    algorithm = "rsa2048" if "rsa2048" in ctx.algorithms else ctx.algorithms[0]
    have_openssl = shutil.which("openssl") is not None
    for count in QUICK_SIZES if ctx.quick else SIZES:
        label = f"{count // 1000}k" if count < 1_000_000 else f"{count // 1_000_000}M"
        params = {"home": ctx.home.root, "algorithm": algorithm, "count": count, "runs": ctx.runs}
        runs = in_child(f"{__name__}:koshin_crl", params)
        common = {"algorithm": algorithm, "entries": count}
        ctx.add(SCENARIO, f"koshin {label} time", "s", [r["seconds"] for r in runs], **common)
        result = ctx.add(SCENARIO, f"koshin {label} peak RSS", "MiB", [r["peak_mib"] for r in runs], **common)
        result.extra.update(rss_before_build_mib=round(runs[0]["before_mib"], 1), crl_bytes=runs[0]["bytes"])
        if have_openssl:
            times = [_openssl_crl(ctx, algorithm, count, i) for i in range(ctx.runs)]
            ctx.add(SCENARIO, f"openssl {label} time", "s", times, **common)
    if not have_openssl:
        ctx.skip("crl (openssl)", "openssl not installed: openssl ca -gencrl not measured")
