"""Scenario ``wave``: N counter card renewals through the service path a station drives (README, "Card issuance
and renewal at the counter"): per renewal a counter proofing event (policy decision, audited), the new card's
registration, ``issue_cards`` with ``replaces_card`` (two CSR checks, two lints, two token signatures, two
stored certificates) and the old card's two certificates revoked as superseded, each step with its audit
record. The card requests go in batches of ``BATCH``, as a central issuing station sends them
(``POST /v1/card-issuances/batch``, ``koshin ca issue-cards``): the writes of a whole batch in two
transactions. Two service processes share the wave; a progress bar follows it.

Faithful where it costs the CA, simplified where it does not (stated in README, "Figures"):
- the holder keys are made on the bench's station token and their CSRs signed there, as the station does, but
  a pool of 8 key pairs per process is reused: 100,132 RSA key generations would measure SoftHSM's key
  generation and the chip injection, which happen at the station, not at the CA;
- each process renews a pool of up to ``RESIDENTS`` residents round robin (each renewal supersedes the
  resident's previous card), so the database grows by exactly the wave's certificates, revocations and audit
  records. (A pool of 50 had each holder collect hundreds of cards in a full wave, and the reads of a holder's
  cards grew with them: a cost of the bench, not of a wave, where each holder renews once.)
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.child import in_child, mp_context
from bench.context import BenchContext
from bench.home import STATION_TOKEN, BenchHome
from bench.setup import MIYAZAKI, seed_actors
from devices.station import csr_on
from hsm import KeyAlgorithm, TokenSession, admin
from service.flows.card_issuance import CardIssueInput, issue_cards
from service.flows.proofing import ProofingInput, record_proofing
from service.policy.model import Channel, Evidence, Operation
from service.publication.crl import BackgroundPublisher
from service.runtime import open_runtime

SCENARIO = "wave"
NATIONAL_FY2025 = 15_800_000  # certificate renewals forecast for FY2025
PROCESSES = 2
KEY_POOL = 8
RESIDENTS = 1000  # per process: each renews share/1000 times (a real wave renews each holder once; a pool this
# size keeps a holder's card history short, so the per-request reads stay what they are for a real holder)
BATCH = 50  # card renewals per batch (``issue_cards``; the REST batch takes up to 100)
EVIDENCE = frozenset({Evidence.PHOTO_ID_DOCUMENT, Evidence.RESIDENT_REGISTER_MATCH})


def _station_csrs(home: BenchHome, index: int, count: int) -> list[str]:
    station = TokenSession(str(admin.find_softhsm()), STATION_TOKEN, home.pin)
    try:
        csrs = []
        for k in range(count):
            label = f"wave-{index}-{k}-{uuid.uuid4().hex[:6]}"
            station.generate_keypair(KeyAlgorithm.RSA2048, label, for_injection=True)
            csrs.append(csr_on(station, label, KeyAlgorithm.RSA2048))
            station.delete_key(label)  # as after injection: nothing stays on the station
        return csrs
    finally:
        station.close()


def _worker(params: dict[str, Any], index: int, done: Synchronized[int], opened: Any, out: Any) -> None:
    try:
        home = BenchHome(params["home"])
        settings = home.settings(params["algorithm"], database_url=params.get("database_url"), prefix=params["prefix"])
        rt = open_runtime(settings)
        # SoftHSM reads its token directory at C_Initialize; a token file another process is rewriting at that
        # moment (a worker generating its station keys) is skipped, and the token is then "not found". Every
        # worker has initialised the module before any of them writes to a token.
        opened.wait(timeout=120)
        publisher = BackgroundPublisher(rt.crl_publication, settings.crl_coalesce_seconds, settings.crl_check_seconds)
        rt.publisher = publisher  # as in a service worker: revocations published coalesced, off the renewal path
        publisher.start()
        actor = rt.repo.actor_by_token(params["token"])
        assert actor is not None  # noqa: S101 - seeded just before
        csrs = _station_csrs(home, index, params["keys"])
        numbers = []
        for _ in range(params["residents"]):
            number = f"W{index}-{uuid.uuid4().hex[:12]}"
            rt.repo.acting(actor.name, actor.role).create_resident({
                "resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
                "municipality_code": MIYAZAKI, "date_of_birth": date(1988, 4, 12), "sex": "2"})  # fmt: skip
            numbers.append(number)
        residents: list[tuple[str, str | None]] = [(number, None) for number in numbers]  # (resident, current card)
        for first in range(0, len(residents), BATCH):  # each one's first card, before the clock starts
            group = residents[first : first + BATCH]
            cards = _renew_batch(rt, actor, group, csrs, first)
            residents[first : first + BATCH] = [(r, c) for (r, _), c in zip(group, cards, strict=True)]
        out.send(("ready", None))
        out.recv()
        start, n = time.perf_counter(), 0
        chunk = min(BATCH, len(residents))  # a resident renews at most once per batch
        while n < params["renewals"]:
            take = min(chunk, params["renewals"] - n)
            picked = [(n + k) % len(residents) for k in range(take)]
            cards = _renew_batch(rt, actor, [residents[i] for i in picked], csrs, n)
            for i, card in zip(picked, cards, strict=True):
                residents[i] = (residents[i][0], card)
            n += take
            with done.get_lock():
                done.value += take
        elapsed = time.perf_counter() - start
        publisher.stop()
        out.send(("done", (n, elapsed)))
        rt.close()
    except BaseException as exc:
        out.send(("error", f"{type(exc).__name__}: {exc}"))


def _renew_batch(rt: Any, actor: Any, renewals: list[tuple[str, str | None]], csrs: list[str], n: int) -> list[str]:
    """A central station's batch: each renewal's counter proofing and new card, then every card request of the
    batch through ``issue_cards`` (the writes of the whole batch in two transactions)."""
    items, cards = [], []
    for k, (number, old_card) in enumerate(renewals):
        operation = Operation.CARD_RENEW if old_card else Operation.CARD_ISSUE
        event, _ = record_proofing(rt, actor, ProofingInput(number, operation, Channel.COUNTER_IN_PERSON, EVIDENCE))
        card = f"W{uuid.uuid4().hex[:20].upper()}"
        rt.repo.acting(actor.name, actor.role).add_card(number, card, datetime.now(UTC).date())
        pair = {"signature": csrs[(2 * (n + k)) % len(csrs)].encode(),
                "user-authentication": csrs[(2 * (n + k) + 1) % len(csrs)].encode()}  # fmt: skip
        items.append(CardIssueInput(number, event.id, card, pair, replaces_card=old_card, key_origin="station"))
        cards.append(card)
    for outcome in issue_cards(rt, actor, items):
        if isinstance(outcome, Exception):
            raise outcome
    return cards


def run_wave(ctx: BenchContext, backend: str, database_url: str | None, prefix: str, renewals: int) -> None:
    algorithm = "rsa2048" if "rsa2048" in ctx.algorithms else ctx.algorithms[0]
    seed = {"home": ctx.home.root, "algorithm": algorithm, "database_url": database_url, "prefix": prefix,
            "tag": f"wave-{backend}"}  # fmt: skip
    token = in_child(f"{seed_actors.__module__}:seed_actors", seed)["municipal_staff"]
    context = mp_context()
    done = context.Value("q", 0)
    opened = context.Barrier(PROCESSES)
    shares = [renewals // PROCESSES + (1 if i < renewals % PROCESSES else 0) for i in range(PROCESSES)]
    pipes, procs = [], []
    for index, share in enumerate(shares):
        parent, child = context.Pipe()
        params = {**seed, "token": token, "renewals": share, "residents": max(1, min(share // 4, RESIDENTS)),
                  "keys": 2 if ctx.quick else KEY_POOL}  # fmt: skip
        proc = context.Process(target=_worker, args=(params, index, done, opened, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        kind, value = pipe.recv()
        if kind == "error":
            raise RuntimeError(value)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
    start = time.perf_counter()
    for pipe in pipes:
        pipe.send("go")
    with Progress(*columns, console=ctx.console, transient=ctx.quick) as progress:
        task = progress.add_task(f"wave {backend}: card renewals", total=renewals)
        while any(not pipe.poll() for pipe in pipes):
            progress.update(task, completed=done.value)
            time.sleep(0.25)
        progress.update(task, completed=done.value)
    answers = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(30)
    errors = [value for kind, value in answers if kind == "error"]
    if errors:
        raise RuntimeError(errors[0])
    total = time.perf_counter() - start
    count = sum(value[0] for _, value in answers)
    certs_per_s = 2 * count / total
    common = {"algorithm": algorithm, "backend": backend, "renewals": count, "processes": PROCESSES, "lint": True}
    intact, records, problem = in_child("bench.setup:verify_audit", seed)
    result = ctx.add(SCENARIO, f"{backend} N={count} total", "s", [total], **common)
    result.extra.update(audit_log_intact=intact, audit_records=records, audit_problem=problem)
    if not intact:
        ctx.skip(f"wave {backend}", f"the audit log is broken after the wave: {problem}")
    ctx.add(SCENARIO, f"{backend} certificates", "/s", [certs_per_s], **common)
    ctx.add(SCENARIO, f"{backend} projected 50,066 s", "s", [50_066 * total / count], **common)
    ctx.add(SCENARIO, f"{backend} projected 15.8M certificates", "h", [NATIONAL_FY2025 / certs_per_s / 3600], **common)
    ctx.add(SCENARIO, f"{backend} nodes for 15.8M in one 8-hour day", "nodes",
            [NATIONAL_FY2025 / (8 * 3600) / certs_per_s], per_node_certificates_per_s=round(certs_per_s, 1),
            **common)  # fmt: skip


def run(ctx: BenchContext) -> None:
    run_wave(ctx, "sqlite", None, "", ctx.wave_size)
    if ctx.postgres_url is not None:
        from bench.postgres import new_database

        algorithm = "rsa2048" if "rsa2048" in ctx.algorithms else ctx.algorithms[0]
        run_wave(ctx, "postgresql", new_database(ctx, f"wave_{algorithm}"), "pg-wave-", ctx.wave_size)
