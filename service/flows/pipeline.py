"""The one issuance pipeline. Every channel that issues (REST ``/v1/certificates`` and ``/v1/card-issuances``,
phone enrollment and re-key, CMP ``ir``/``kur``, EST ``simpleenroll``, the operator's ``koshin ca issue`` and
``sample``, koshin's own server certificates) contributes only its authoriser (what it checked, who acts under
which rule, what the authorisation spends) and its request builder (the orders); this runs the rest once:

1. prepare every certificate of the request in the CA core (checks, validity, body) and lint a throwaway-signed
   copy of each: nothing is spent if any is refused;
2. **one write transaction**: spend the authorisation, record every intent as ``pending``, audit. A serial that
   is already taken rolls the whole transaction back; the request is prepared again with new serials (at most
   ``SERIAL_ATTEMPTS`` times);
3. sign each certificate once on the token;
4. **one write transaction**: record the results, supersede predecessors, change cards, audit;
5. hand the revocations to publication (the CRL publisher; OCSP reads the rows, so it knows at once).

``issue_batch`` runs many plans (a central issuing station's batch) the same way, with the writes of the whole
batch in two transactions (service/db/issuance_batch.py): an item refused while it is prepared, whose
authorisation was spent meanwhile or whose signature fails, fails alone, with the failure rule below.

A failure after the spend has one rule for every channel. The certificates already signed for the request are
recorded revoked (cessationOfOperation) in the outcome transaction and never delivered, those not signed are
recorded failed, and the authorisation is given back (the proofing event and the nonce are usable again until
they expire): the holder gets nothing, so the holder keeps the right to try again. A crash between the two
transactions leaves ``pending`` intents that reconciliation (service/flows/reconciliation.py) records revoked;
their authorisation stays spent, because nothing can tell any more whether a response went out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.errors import CaError, IssuanceRefused, SerialCollision
from ca.issuance import CertificateAuthority, IssuanceIntent, IssueRequest, PreparedCertificate
from ca.lint import LintReport
from hsm.errors import HsmError
from service.db.issuance_batch import BatchIssuanceStore, IntentItem, OutcomeItem
from service.db.issuance_store import Binding, CardChange, Intent, Outcome, OutcomeRecords, Spend
from service.db.models import CertificateRecord
from service.db.unit import Acting
from service.errors import ServiceError
from service.observability.metrics import CERTIFICATES

SERIAL_ATTEMPTS = 3
SIGNATURE, AUTH_PROFILE = "signature", "user-authentication"  # the holder profiles (profiles/certificate/)
PROVISIONING = Acting("provisioning", "system")  # koshin's own server certificates, made at start-up
Prepare = Callable[[CertificateAuthority], PreparedCertificate]


class Publisher(Protocol):
    """Where revocations go once committed (service/publication/crl.py)."""

    def revoked(self, issuers: Iterable[str]) -> None: ...


@dataclass(frozen=True)
class Order:
    """One certificate of a request: how the CA core prepares it (again, after a serial collision) and the
    service-side facts recorded with it."""

    prepare: Prepare
    binding: Binding = field(default_factory=Binding)
    request: IssueRequest | None = None  # a holder certificate's request (prepare_orders caps a signature one)

    @classmethod
    def holder(cls, request: IssueRequest, binding: Binding | None = None) -> Order:
        return cls(lambda authority: authority.prepare(request), binding or Binding(), request)


def prepare_orders(authority: CertificateAuthority, orders: Sequence[Order]) -> list[PreparedCertificate]:
    """Prepare every order. A signature certificate ordered with a user-authentication one (a card's pair, a
    phone's) never outlives it (brief §2.2): the user-authentication one is prepared first and caps it."""
    requests = {i: o.request for i, o in enumerate(orders) if o.request is not None}
    paired = any(r.profile == AUTH_PROFILE for r in requests.values())
    later = {i: r for i, r in requests.items() if paired and r.profile == SIGNATURE}
    prepared = {i: order.prepare(authority) for i, order in enumerate(orders) if i not in later}
    auth_ends = [p.intent.not_after for p in prepared.values() if p.intent.profile == AUTH_PROFILE]
    for i, request in later.items():
        prepared[i] = authority.prepare(request.capped_by_auth(min(auth_ends)))
    return [prepared[i] for i in range(len(orders))]


@dataclass(frozen=True)
class Plan:
    """What a channel asks of the pipeline."""

    who: Acting  # the actor, role and policy rule every audit record of the request names
    spend: Spend  # what the authorisation consumes (nothing, for operator issuance)
    orders: tuple[Order, ...]
    supersede: tuple[int, ...] = ()  # serials revoked as superseded once the new certificates are issued
    cards: tuple[CardChange, ...] = ()
    channel: str = "operator"  # for the metrics: rest, card, phone, phone-rekey, est, cmp-ir, cmp-kur, ...


@dataclass(frozen=True)
class IssuedCertificate:
    intent: IssuanceIntent
    certificate: x509.Certificate
    record: CertificateRecord
    lint: LintReport | None


@dataclass(frozen=True)
class Issued:
    certificates: list[IssuedCertificate]  # in the order of the plan's orders
    superseded: list[CertificateRecord]

    @property
    def only(self) -> IssuedCertificate:
        (single,) = self.certificates
        return single


@dataclass(frozen=True)
class Pipeline:
    authority: CertificateAuthority
    store: BatchIssuanceStore
    publisher: Publisher

    def issue(self, plan: Plan) -> Issued:
        if not plan.orders:
            raise IssuanceRefused("an issuance request needs at least one certificate")
        store = self.store.as_(plan.who)
        prepared = self._prepare_and_record(plan, store)
        certificates, failure = self._sign(prepared)
        outcome = _outcome(plan, prepared, certificates, failure)
        recorded = store.record_outcome(outcome, _now())
        _count(plan, prepared, outcome)
        self._publish([(prepared, outcome, recorded)])
        if failure is not None:
            raise failure
        return _issued(prepared, certificates, recorded)

    def issue_batch(self, plans: Sequence[Plan]) -> list[Issued | Exception]:
        """Every plan through the pipeline with the writes of the whole batch in two transactions (plus one more
        per round of serial collisions, rare); each item's result, or the error that failed it alone."""
        results: list[Issued | Exception | None] = [None] * len(plans)
        prepared: dict[int, list[PreparedCertificate]] = {}
        for i, plan in enumerate(plans):
            try:
                if not plan.orders:
                    raise IssuanceRefused("an issuance request needs at least one certificate")
                prepared[i] = prepare_orders(self.authority, plan.orders)
            except (CaError, ServiceError, HsmError, ValueError) as exc:
                results[i] = exc
        recorded = self._record_batch(plans, prepared, results)
        signing = {i: self._sign(prepared[i]) for i in recorded}
        outcomes = {i: _outcome(plans[i], prepared[i], *signing[i]) for i in recorded}
        stored = self.store.record_outcomes_batch([OutcomeItem(plans[i].who, outcomes[i]) for i in recorded], _now())
        published = []
        for i, records in zip(recorded, stored, strict=True):
            certificates, failure = signing[i]
            if isinstance(records, Exception):
                results[i] = records
                continue
            _count(plans[i], prepared[i], outcomes[i])
            published.append((prepared[i], outcomes[i], records))
            results[i] = failure if failure is not None else _issued(prepared[i], certificates, records)
        self._publish(published)
        return [r if r is not None else IssuanceRefused("not processed") for r in results]

    def _record_batch(self, plans: Sequence[Plan], prepared: dict[int, list[PreparedCertificate]],
                      results: list[Issued | Exception | None]) -> list[int]:  # fmt: skip
        """The batch's intent transaction; items whose serial was taken are prepared again and retried."""
        recorded: list[int] = []
        todo = [i for i in prepared if results[i] is None]
        for _attempt in range(SERIAL_ATTEMPTS):
            if not todo:
                break
            items = [IntentItem(plans[i].who, plans[i].spend, [Intent(p.intent, o.binding) for p, o in
                                                                 zip(prepared[i], plans[i].orders, strict=True)])
                     for i in todo]  # fmt: skip
            retry = []
            for i, error in zip(todo, self.store.record_intents_batch(items, _now()), strict=True):
                if error is None:
                    recorded.append(i)
                elif isinstance(error, SerialCollision):
                    prepared[i] = prepare_orders(self.authority, plans[i].orders)
                    retry.append(i)
                else:
                    results[i] = error
            todo = retry
        for i in todo:
            results[i] = IssuanceRefused(f"no free serial number after {SERIAL_ATTEMPTS} attempts")
        return sorted(recorded)

    def _publish(self, done: Sequence[tuple[Sequence[PreparedCertificate], Outcome, OutcomeRecords]]) -> None:
        revoked: set[str] = set()
        for prepared, outcome, recorded in done:
            revoked |= {r.issuer for r in recorded.superseded}
            revoked |= {p.intent.issuer for p in prepared if p.intent.serial in outcome.withheld}
        if revoked:
            self.publisher.revoked(revoked)

    def _prepare_and_record(self, plan: Plan, store: BatchIssuanceStore) -> list[PreparedCertificate]:
        """Prepare and lint every order, then spend and record the intents; new serials after a collision."""
        for _attempt in range(SERIAL_ATTEMPTS):
            prepared = prepare_orders(self.authority, plan.orders)
            intents = [Intent(p.intent, order.binding) for p, order in zip(prepared, plan.orders, strict=True)]
            try:
                store.record_intents(plan.spend, intents, _now())
            except SerialCollision:
                continue
            return prepared
        raise IssuanceRefused(f"no free serial number after {SERIAL_ATTEMPTS} attempts")

    def _sign(self, prepared: Sequence[PreparedCertificate]) -> tuple[dict[int, x509.Certificate], Exception | None]:
        """Sign in order and stop at the first failure (the token, or the TBS check): (serial -> those signed,
        the failure or None)."""
        signed: dict[int, x509.Certificate] = {}
        for item in prepared:
            try:
                signed[item.intent.serial] = self.authority.sign(item)
            except Exception as exc:
                return signed, exc
        return signed, None


def _outcome(plan: Plan, prepared: Sequence[PreparedCertificate], certificates: dict[int, x509.Certificate],
             failure: Exception | None) -> Outcome:  # fmt: skip
    """Issued, or (after a failure) the signed ones withheld, the rest failed, the authorisation given back."""
    signed = {serial: c.public_bytes(Encoding.DER) for serial, c in certificates.items()}
    if failure is None:
        return Outcome(issued=signed, supersede=plan.supersede, cards=plan.cards)
    reason = f"{type(failure).__name__}: {failure}"
    serials = [p.intent.serial for p in prepared]
    failed = {s: (reason if i == len(signed) else "not signed: an earlier certificate of the request failed")
              for i, s in enumerate(serials) if s not in signed}  # fmt: skip
    return Outcome(withheld=signed, failed=failed, give_back=plan.spend)


def _issued(prepared: Sequence[PreparedCertificate], certificates: dict[int, x509.Certificate],
            recorded: OutcomeRecords) -> Issued:  # fmt: skip
    return Issued([IssuedCertificate(p.intent, certificates[p.intent.serial], recorded.certificates[p.intent.serial],
                                     p.lint) for p in prepared], recorded.superseded)  # fmt: skip


def _count(plan: Plan, prepared: Sequence[PreparedCertificate], outcome: Outcome) -> None:
    rule = plan.who.rule_id or "none"
    for item in prepared:
        serial = item.intent.serial
        result = "issued" if serial in outcome.issued else "withheld" if serial in outcome.withheld else "failed"
        CERTIFICATES.labels(plan.channel, item.intent.profile, rule, result).inc()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
