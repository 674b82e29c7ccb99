"""Time one holder-certificate issuance on the embedded default, with and without pre-issuance lint.

    .venv/bin/python scripts/issue_timing.py [--count N]

Uses KOSHIN_HOME like every command (run `koshin init` first). Prints medians of N issuances per mode; the
full benchmark harness is `koshin bench` (a later issue). Certificates issued here are stored like any other.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from ca.extensions import CaUrls
from ca.issuance import CertificateAuthority, IssueRequest
from ca.lint import PkixLinter
from ca.profiles import AssuranceLevel
from service.cli.sample import SAMPLE_HOLDER, sample_csr
from service.db.issuance_store import Spend
from service.flows.pipeline import Order, Pipeline, Plan
from service.runtime import open_runtime
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    rt = open_runtime(Settings())
    try:
        csr = sample_csr(rt)
        issuers = rt.authority().issuers
        print(f"machine: {platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}")
        print(f"CA key: {rt.settings.ca_key_algorithm}; holder key: rsa2048; {args.count} issuances per mode")
        for label, linter in (("lint on ", PkixLinter()), ("lint off", None)):
            authority = CertificateAuthority(rt.profiles, issuers, CaUrls(rt.settings.public_base_url), linter)
            pipeline = Pipeline(authority, rt.repo, rt.crl_publisher())
            for profile in ("signature", "user-authentication"):
                samples = []
                for _ in range(args.count):
                    start = time.perf_counter()
                    order = Order.holder(IssueRequest(profile, csr, SAMPLE_HOLDER, AssuranceLevel.IAL3))
                    pipeline.issue(Plan(rt.repo.who, Spend(), (order,)))
                    samples.append(time.perf_counter() - start)
                median = statistics.median(samples) * 1000
                print(f"{label} {profile:20} median {median:6.2f} ms  ({1000 / median:6.1f}/s, one process)")
    finally:
        rt.close()


if __name__ == "__main__":
    main()
