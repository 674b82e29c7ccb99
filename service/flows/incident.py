"""A mass incident, the way Estonia met ROCA in 2017 (domain brief §4.1): select the affected certificates by a
predicate, suspend them (certificateHold, which a release undoes) or revoke them, batch by batch, then publish
the CRLs of every issuer touched (each shard of a partitioned one) before returning.

The action is the CA operator's, decided once by the policy (REVOKE-CA: the CA revokes on its own records) and
recorded with its rule on every audit record. An incident is named; its predicate is kept in
``KOSHIN_HOME/incidents/<name>.json`` at its first run, so ``suspend``, ``revoke``, ``release`` and ``report``
of that name all mean the same certificates, and an interrupted run resumes by running again (the store only
changes what is still in the state the action changes: service/db/incident_store.py).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ca.crl import reason_flag
from ca.keycheck import has_roca_fingerprint
from service.db.incident_store import HOLD, Candidate, IncidentQuery
from service.db.registry_models import Actor
from service.db.unit import Acting
from service.errors import IncidentInvalid, PolicyDenied
from service.flows.authorisation import evaluate
from service.policy.model import Channel, HolderState, Operation, PolicyRequest, Role
from service.runtime import Runtime

ACTIONS = ("suspend", "revoke", "release")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Predicate:
    """The affected certificates: the columns of ``query`` and, with ``roca``, an RSA modulus carrying the ROCA
    fingerprint (CVE-2017-15361; ca.keycheck)."""

    query: IncidentQuery = field(default_factory=IncidentQuery)
    roca: bool = False

    def fits(self, candidate: Candidate) -> bool:
        if not self.roca:
            return True
        if candidate.certificate_der is None:
            return False
        key = x509.load_der_x509_certificate(candidate.certificate_der).public_key()
        return isinstance(key, rsa.RSAPublicKey) and has_roca_fingerprint(key.public_numbers().n)

    def as_json(self) -> dict[str, object]:
        query = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self.query).items()}
        query.pop("with_der")
        return {"query": query, "roca": self.roca}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Predicate:
        raw = dict(data["query"])  # type: ignore[call-overload]
        for key in ("issued_from", "issued_until"):
            if raw.get(key) is not None:
                raw[key] = datetime.fromisoformat(raw[key])
        roca = bool(data["roca"])
        return cls(IncidentQuery(**raw, with_der=roca), roca)


@dataclass
class Outcome:
    incident: str
    action: str
    rule_id: str
    changed: int = 0
    seconds: float = 0.0
    issuers: set[str] = field(default_factory=set)
    crls: list[dict[str, object]] = field(default_factory=list)  # what publication stored: issuer, shard, entries


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise IncidentInvalid(f"{name!r} is not an incident name (lowercase letters, digits, '.', '_', '-')")


def incident_predicate(rt: Runtime, name: str, given: Predicate | None) -> Predicate:
    """The incident's predicate: recorded at its first run, and a later run may only repeat it."""
    check_name(name)
    path = rt.settings.home / "incidents" / f"{name}.json"
    if path.is_file():
        recorded = Predicate.from_json(json.loads(path.read_text(encoding="utf-8")))
        if given is not None and given != recorded:
            raise IncidentInvalid(f"incident {name!r} was defined with {recorded.as_json()}; run it without a new "
                                  "predicate, or name a new incident")  # fmt: skip
        return recorded
    if given is None:
        raise IncidentInvalid(f"no incident {name!r} yet: give its predicate (--ca, --issued-from, --roca, ...)")
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(given.as_json(), indent=1), encoding="utf-8")
    scratch.replace(path)  # atomic: a crash leaves the old state or the new, never half a file
    return given


def decide_incident(rt: Runtime, actor: Actor, action: str, reason: str) -> Acting:
    """The policy on a CA-initiated revocation with ``reason`` (a suspension and its release: certificateHold)."""
    if action not in ACTIONS:
        raise IncidentInvalid(f"unknown incident action {action!r} (known: {', '.join(ACTIONS)})")
    reason_flag(reason)
    request = PolicyRequest(
        operation=Operation.REVOKE,
        channel=Channel.BACK_OFFICE,
        role=Role(actor.role),
        actor_municipality=actor.municipality_code,
        holder_municipality=None,
        evidence=frozenset(),
        holder=HolderState(age=0, card_valid=False, sign_cert_valid=False),
        revocation_reason=HOLD if action != "revoke" else reason,
    )
    decision = evaluate(rt, request)
    who = Acting(actor.name, actor.role, decision.rule_id, "allow" if decision.allowed else "deny")
    if not decision.allowed:
        raise PolicyDenied(decision.rule_id, decision.reason, decision.regime)
    return who


def affected(rt: Runtime, predicate: Predicate, action: str, batch: int = 5000) -> Iterator[list[Candidate]]:
    """The holder certificates of the incident that ``action`` would still change, a batch at a time. The PKI's
    own service certificates (CMP responder, TLS) are never part of one: revoking those re-keys the service
    (REVOKE-INFRA, ``koshin ca revoke``)."""
    services = set(rt.profiles.servers)
    for candidates in rt.repo.incident_candidates(predicate.query, action, batch):
        chosen = [c for c in candidates if c.profile not in services and predicate.fits(c)]
        if chosen:
            yield chosen


def run_incident(
    rt: Runtime,
    actor: Actor,
    name: str,
    action: str,
    predicate: Predicate | None = None,
    *,
    reason: str = "keyCompromise",
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Apply ``action`` to every certificate of incident ``name`` still in the state it changes; then publish the
    CRLs of every issuer it touched. Safe to run again after an interruption."""
    chosen = incident_predicate(rt, name, predicate)
    reason = HOLD if action == "suspend" else reason
    who = decide_incident(rt, actor, action, reason)
    outcome = Outcome(name, action, who.rule_id or "")
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    for candidates in affected(rt, chosen, action, batch):
        done = rt.repo.as_(who).change_incident_batch(name, action, candidates, reason, now)
        outcome.changed += len(done)
        outcome.issuers.update(c.issuer for c in done)
        if progress is not None:
            progress(len(done))
    outcome.crls = publish_after(rt, outcome.issuers)
    outcome.seconds = time.perf_counter() - started
    return outcome


def publish_after(rt: Runtime, issuers: set[str]) -> list[dict[str, object]]:
    """Publish every issuer's CRLs now (all shards of a partitioned one), as an operator command must."""
    published: list[dict[str, object]] = []
    for issuer in sorted(issuers):
        for p in rt.crl_publication.publish_partitioned(issuer, force=True):
            published.append({"issuer": p.issuer, "shard": p.shard, "number": p.number,
                              "entries": p.entries, "seconds": round(p.seconds, 3)})  # fmt: skip
    return published
