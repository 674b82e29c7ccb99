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

from ca.errors import IssuanceRefused, SerialCollision
from ca.issuance import CertificateAuthority, IssuanceIntent, IssueRequest, PreparedCertificate
from ca.lint import LintReport
from service.db.issuance_store import Binding, CardChange, Intent, IssuanceStore, Outcome, Spend
from service.db.models import CertificateRecord
from service.db.unit import Acting
from service.observability.metrics import CERTIFICATES

SERIAL_ATTEMPTS = 3
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

    @classmethod
    def holder(cls, request: IssueRequest, binding: Binding | None = None) -> Order:
        return cls(lambda authority: authority.prepare(request), binding or Binding())


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
    store: IssuanceStore
    publisher: Publisher

    def issue(self, plan: Plan) -> Issued:
        if not plan.orders:
            raise IssuanceRefused("an issuance request needs at least one certificate")
        store = self.store.as_(plan.who)
        prepared = self._prepare_and_record(plan, store)
        certificates, failure = self._sign(prepared)
        signed = {serial: c.public_bytes(Encoding.DER) for serial, c in certificates.items()}
        serials = [p.intent.serial for p in prepared]
        if failure is None:
            outcome = Outcome(issued=signed, supersede=plan.supersede, cards=plan.cards)
        else:
            reason = f"{type(failure).__name__}: {failure}"
            failed = {s: (reason if i == len(signed) else "not signed: an earlier certificate of the request failed")
                      for i, s in enumerate(serials) if s not in signed}  # fmt: skip
            outcome = Outcome(withheld=signed, failed=failed, give_back=plan.spend)
        recorded = store.record_outcome(outcome, _now())
        _count(plan, prepared, outcome)
        revoked = {r.issuer for r in recorded.superseded} | {p.intent.issuer for p in prepared if p.intent.serial
                                                                in outcome.withheld}  # fmt: skip
        if revoked:
            self.publisher.revoked(revoked)
        if failure is not None:
            raise failure
        issued = [
            IssuedCertificate(p.intent, certificates[p.intent.serial], recorded.certificates[p.intent.serial], p.lint)
            for p in prepared
        ]
        return Issued(issued, recorded.superseded)

    def _prepare_and_record(self, plan: Plan, store: IssuanceStore) -> list[PreparedCertificate]:
        """Prepare and lint every order, then spend and record the intents; new serials after a collision."""
        for _attempt in range(SERIAL_ATTEMPTS):
            prepared = [order.prepare(self.authority) for order in plan.orders]
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


def _count(plan: Plan, prepared: Sequence[PreparedCertificate], outcome: Outcome) -> None:
    rule = plan.who.rule_id or "none"
    for item in prepared:
        serial = item.intent.serial
        result = "issued" if serial in outcome.issued else "withheld" if serial in outcome.withheld else "failed"
        CERTIFICATES.labels(plan.channel, item.intent.profile, rule, result).inc()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
