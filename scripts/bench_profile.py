"""Profile what ``koshin bench`` measures, in one process, with pyinstrument (pip install pyinstrument).

    .venv/bin/python scripts/bench_profile.py issue --count 300 [--lint/--no-lint] [--algorithm rsa2048]
    .venv/bin/python scripts/bench_profile.py lint --count 300
    .venv/bin/python scripts/bench_profile.py wave --count 20    # batches of wave.BATCH renewals

Works in its own temporary bench home (never KOSHIN_HOME). Prints pyinstrument's text report.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from pyinstrument import Profiler

from bench.home import prepare
from bench.setup import BENCH_HOLDER, MIYAZAKI, holder_csr_pem, init_hierarchy, seed_actors
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from ca.signing import lint_copy
from service.flows.issuance import issue_for_operator
from service.publication.crl import BackgroundPublisher
from service.runtime import open_runtime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["issue", "lint", "wave"])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--algorithm", default="rsa2048")
    parser.add_argument("--lint", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="koshin-profile-") as tmp:
        home = prepare(Path(tmp))
        init_hierarchy({"home": home.root, "algorithm": args.algorithm, "prefix": ""})
        rt = open_runtime(home.settings(args.algorithm, lint=args.lint))
        authority = rt.authority()
        csr_pem = holder_csr_pem().encode()
        if args.what == "wave":
            from bench import wave

            token = seed_actors({"home": home.root, "algorithm": args.algorithm, "prefix": "", "tag": "p"})
            actor = rt.repo.actor_by_token(token["municipal_staff"])
            csrs = [holder_csr_pem() for _ in range(4)]
            publisher = BackgroundPublisher(rt.crl_publication, 0.5, 30.0)  # as in a wave worker
            rt.publisher = publisher
            publisher.start()
            residents: list[tuple[str, str | None]] = []
            for k in range(wave.BATCH):
                number = f"P-{k:04d}"
                rt.repo.create_resident({"resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市",
                                         "municipality_code": MIYAZAKI, "date_of_birth": date(1988, 4, 12),
                                         "sex": "2"})  # fmt: skip
                residents.append((number, None))
            first = wave._renew_batch(rt, actor, residents, csrs, 0)
            residents[:] = [(number, card) for (number, _), card in zip(residents, first, strict=True)]

            def step(i: int) -> None:  # one batch of wave.BATCH renewals
                cards = wave._renew_batch(rt, actor, residents, csrs, i)
                residents[:] = [(number, card) for (number, _), card in zip(residents, cards, strict=True)]
        elif args.what == "lint":
            prepared = authority.prepare(
                IssueRequest("signature", load_csr(csr_pem), BENCH_HOLDER, AssuranceLevel.IAL3)
            )
            signing = authority.issuers[prepared.intent.issuer].signing

            def step(i: int) -> None:
                lint_copy(prepared.builder, signing, rt.linter)
        else:

            def step(i: int) -> None:
                request = IssueRequest("signature", load_csr(csr_pem), BENCH_HOLDER, AssuranceLevel.IAL3)
                issue_for_operator(rt, request)

        step(0)
        profiler = Profiler(interval=0.0005)
        start = time.perf_counter()
        profiler.start()
        for i in range(1, args.count + 1):
            step(i)
        profiler.stop()
        elapsed = time.perf_counter() - start
        print(profiler.output_text(unicode=True, color=False, show_all=False, flat=True))
        print(
            f"{args.what}: {args.count} in {elapsed:.2f} s = {args.count / elapsed:.1f}/s "
            f"({1000 * elapsed / args.count:.2f} ms each) at {datetime.now(UTC):%H:%M:%S}"
        )
        rt.close()


if __name__ == "__main__":
    main()
