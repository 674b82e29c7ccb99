"""Scenario ``peer-openssl``: what an operator's shell loop does, ``openssl x509 -req`` signing one CSR per
process with the same token key through the pkcs11 engine; one loop and two loops side by side."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench.child import in_child
from bench.context import BenchContext
from bench.openssl_engine import engine_config, engine_path, key_uri
from bench.setup import holder_csr_pem

SCENARIO = "peer-openssl"


def _loop(args: list[str], env: dict[str, str], deadline: float, tally: list[int], lock: threading.Lock) -> None:
    done = failed = 0
    while time.perf_counter() < deadline:
        serial = ["-set_serial", f"0x{secrets.randbits(120):x}"]
        result = subprocess.run(args + serial, env=env, capture_output=True, timeout=60, check=False)
        if result.returncode == 0:
            done += 1
        else:
            failed += 1
    with lock:
        tally[0] += done
        tally[1] += failed


def run(ctx: BenchContext) -> None:
    if shutil.which("openssl") is None or engine_path() is None:
        ctx.skip(SCENARIO, "openssl or the pkcs11 engine (Debian libengine-pkcs11-openssl) is not installed")
        return
    for algorithm in ctx.algorithms:
        work = ctx.home.root / f"peer-openssl-{algorithm}"
        work.mkdir(exist_ok=True)
        material = in_child("bench.setup:ca_material", {"home": ctx.home.root, "algorithm": algorithm})
        cert_pem, label = material["signature"] if "signature" in material else next(iter(material.values()))
        (work / "ca.pem").write_text(cert_pem)
        (work / "csr.pem").write_text(holder_csr_pem())
        conf = engine_config(work / "openssl.cnf", ctx.home)
        args = ["openssl", "x509", "-req", "-in", str(work / "csr.pem"), "-engine", "pkcs11", "-CAkeyform", "engine",
                "-CA", str(work / "ca.pem"), "-CAkey", key_uri(algorithm, label), "-days", "365", "-sha256",
                "-out", str(Path("/dev/null"))]  # fmt: skip
        env = ctx.home.env(ctx.home.settings(algorithm)) | {"OPENSSL_CONF": str(conf)}
        check = subprocess.run([*args, "-set_serial", "1"], env=env, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"openssl x509 -req with the pkcs11 engine failed: {check.stderr.strip()[-400:]}")
        for loops in (1, 2):
            rates, failures = [], 0
            for _ in range(ctx.runs):
                tally, lock = [0, 0], threading.Lock()
                deadline = time.perf_counter() + ctx.seconds
                start = time.perf_counter()
                threads = [
                    threading.Thread(target=_loop, args=(args, env, deadline, tally, lock)) for _ in range(loops)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                rates.append(tally[0] / (time.perf_counter() - start))
                failures += tally[1]
            result = ctx.add(SCENARIO, f"{algorithm} loops{loops}", "/s", rates, algorithm=algorithm, loops=loops)
            result.extra["failed_calls"] = failures
