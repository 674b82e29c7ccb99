"""The targets of issues 6 and 10, each a ratio of two figures from the same run."""

from __future__ import annotations

from bench.context import BenchContext
from bench.report import Ratio

WAVE_TARGET_S = 600.0  # 50,066 renewals in at most 10 minutes
WORKER_RSS_MIB = 250.0
CRL_RSS_MIB = 1024.0


def ratios(ctx: BenchContext) -> list[Ratio]:
    found: list[Ratio] = []

    def add(
        name: str, num: tuple[str, str], den: tuple[str, str] | None, target: float, *, at_most: bool = False
    ) -> None:
        a = ctx.find(*num)
        b = ctx.find(*den) if den else None
        if a is None or (den is not None and b is None):
            return
        value = a.median / b.median if b is not None and b.median else a.median
        found.append(Ratio(name, f"{num[0]}:{num[1]}", f"{den[0]}:{den[1]}" if den else "1", value, target, at_most))

    for alg in ctx.algorithms:
        floor = 0.8 if alg.startswith("rsa") else 0.5
        for w in (1, 2):
            add(
                f"issue lint off vs token {alg} w{w}",
                ("issue", f"{alg} lint off w{w}"),
                ("token-sign", f"{alg} w{w}"),
                floor,
            )
        for w in (1, 2):
            add(
                f"lint on vs lint off {alg} w{w}",
                ("issue", f"{alg} lint on w{w}"),
                ("issue", f"{alg} lint off w{w}"),
                0.5,
            )
        for w in (1, 2):
            add(
                f"issue vs openssl loop {alg} x{w}",
                ("issue", f"{alg} lint on w{w}"),
                ("peer-openssl", f"{alg} loops{w}"),
                10,
            )
        add(f"ocsp fresh vs token {alg}", ("ocsp", f"{alg} fresh"), ("token-sign", f"{alg} w1"), 0.6)
        add(f"ocsp cached vs fresh {alg}", ("ocsp", f"{alg} cached"), ("ocsp", f"{alg} fresh"), 3)
        add(f"ocsp http vs cfssl ocspserve {alg}", ("ocsp-http", f"{alg} koshin POST w1"),
            ("ocsp-http", f"{alg} cfssl ocspserve"), 1.0)  # fmt: skip
    add("rest vs cfssl p256 c2", ("rest", "p256 sqlite c2"), ("peer-cfssl", "p256 c2"), 1.0)
    add("rest vs token rsa2048 w2", ("rest", "rsa2048 sqlite c2"), ("token-sign", "rsa2048 w2"), 0.6)
    for r in ctx.results:
        if r.scenario == "crl" and r.name.startswith("koshin ") and r.name.endswith(" time"):
            size = r.name.split()[1]
            add(
                f"crl {size} vs openssl ca -gencrl", ("crl", r.name), ("crl", f"openssl {size} time"), 1.0, at_most=True
            )
            add(f"crl {size} peak RSS (MiB)", ("crl", f"koshin {size} peak RSS"), None, CRL_RSS_MIB, at_most=True)
        if r.scenario == "wave" and r.name.endswith("projected 50,066 s"):
            add(f"wave {r.name.split()[0]} 50,066 renewals (s)", ("wave", r.name), None, WAVE_TARGET_S, at_most=True)
        if r.scenario == "rest" and r.name.endswith("worker RSS"):
            add(f"service worker RSS {r.name.split()[0]} (MiB)", ("rest", r.name), None, WORKER_RSS_MIB, at_most=True)
    found += write_path_ratios(ctx) + scale_out_ratios(ctx)
    return found


def scale_out_ratios(ctx: BenchContext) -> list[Ratio]:
    """Issue 13 (scale out): its benchmark table."""
    found: list[Ratio] = []

    def add(name: str, num: tuple[str, str], den: tuple[str, str] | None, target: float, *,
            at_most: bool = False) -> None:  # fmt: skip
        a, b = ctx.find(*num), ctx.find(*den) if den else None
        if a is None or (den is not None and (b is None or not b.median)):
            return
        value = a.median / b.median if b is not None else a.median
        found.append(Ratio(name, f"{num[0]}:{num[1]}", f"{den[0]}:{den[1]}" if den else "1", value, target, at_most))

    for r in ctx.results:
        if r.scenario == "wave" and r.name.split()[1:] == ["certificates"]:
            alg = r.params.get("algorithm", "rsa2048")
            add(f"[13] wave {r.name.split()[0]} vs issue lint on {alg} w2", ("wave", r.name),
                ("issue", f"{alg} lint on w2"), 1.0)  # fmt: skip
        if r.scenario == "nodes" and " two nodes " in r.name:
            add(f"[13] {r.name} vs one node", ("nodes", r.name), ("nodes", r.name.replace("two nodes", "one node")),
                1.7)  # fmt: skip
        if r.scenario == "rest" and r.name.endswith("audit integration p99"):
            add(f"[13] {r.name} (ms)", ("rest", r.name), None, 1000.0, at_most=True)
    for alg in ctx.algorithms:
        add(f"[13] ocsp fresh vs token {alg}", ("ocsp", f"{alg} fresh"), ("token-sign", f"{alg} w1"),
            0.8 if alg.startswith("rsa") else 0.5)  # fmt: skip
    return found


def write_path_ratios(ctx: BenchContext) -> list[Ratio]:
    """Issue 10 (one pipeline, two write transactions): scaling with processes and clients, the service path
    against the core, PostgreSQL against SQLite, the wave against issuance."""
    found: list[Ratio] = []

    def add(name: str, num: tuple[str, str], den: tuple[str, str], target: float, *, at_most: bool = False) -> None:
        a, b = ctx.find(*num), ctx.find(*den)
        if a is not None and b is not None and b.median:
            found.append(Ratio(name, f"{num[0]}:{num[1]}", f"{den[0]}:{den[1]}", a.median / b.median, target, at_most))

    add("[10] issue lint off vs token rsa2048 w1", ("issue", "rsa2048 lint off w1"), ("token-sign", "rsa2048 w1"), 0.35)
    for alg in ctx.algorithms:
        add(
            f"[10] issue w2 vs w1 {alg} lint off", ("issue", f"{alg} lint off w2"), ("issue", f"{alg} lint off w1"), 1.7
        )
        for backend in ("sqlite", "postgresql"):
            rest = f"{alg} {backend}"
            add(f"[10] rest c2 vs c1 {rest}", ("rest", f"{rest} c2"), ("rest", f"{rest} c1"), 1.6)
            add(f"[10] rest c4 vs c2 {rest}", ("rest", f"{rest} c4"), ("rest", f"{rest} c2"), 1.0)
        add(f"[10] rest p50 postgresql vs sqlite {alg} c1", ("rest", f"{alg} postgresql c1 p50"),
            ("rest", f"{alg} sqlite c1 p50"), 1.1, at_most=True)  # fmt: skip
    add("[10] rest vs issue lint on p256 w2", ("rest", "p256 sqlite c2"), ("issue", "p256 lint on w2"), 0.8)
    for r in ctx.results:
        if r.scenario == "wave" and r.name.split()[1:] == ["certificates"]:
            alg = r.params.get("algorithm", "rsa2048")
            add(f"[10] wave {r.name.split()[0]} vs issue lint on {alg} w2", ("wave", r.name),
                ("issue", f"{alg} lint on w2"), 0.8)  # fmt: skip
    return found
