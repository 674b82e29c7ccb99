"""Who can recover from an incident without a counter visit, under each regime, and the counter load the rest
make (the what-if model's counter, service/whatif).

Holders are counted once per credential: a phone by its device, a card by its card. A phone re-keys on the phone
(P11-REKEY: a new key made in its chip, asked for with its current certificate); today's card cannot make a key,
so its certificates are renewed at a counter (P12); a key-generating next-generation card may re-key online
where a regime allows it (proposal-246's P246-CERT-RENEW). Each case is asked of the regime twice: before the
certificates are suspended (the holder's certificate still valid) and while they are on hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.db.incident_store import Candidate
from service.policy.engine import decide
from service.policy.model import AssuranceLevel, Channel, Evidence, HolderState, Operation, PolicyRequest, Role
from service.policy.regime import Regime
from service.whatif.model import Router, legs, regime_year
from service.whatif.scenario import Scenario, YearDemand

PHONE = (Operation.PHONE_CERT_ISSUE, frozenset({Evidence.DERIVED_CERTIFICATE, Evidence.DEVICE_GENERATED_KEY}))
CARD = (Operation.CERT_RENEW, frozenset({Evidence.CARD_SIGN_CERTIFICATE, Evidence.SIGN_PASSWORD}))
NEXT_GENERATION = (CARD[0], CARD[1] | {Evidence.DEVICE_GENERATED_KEY})


@dataclass(frozen=True)
class Holders:
    phones: int
    cards: int

    @classmethod
    def of(cls, affected: Iterable[Candidate]) -> Holders:
        phones: set[str] = set()
        cards: set[int | str] = set()
        for c in affected:
            if c.key_origin == "device" and c.device_id is not None:
                phones.add(c.device_id)
            else:
                cards.add(c.card_id if c.card_id is not None else f"resident:{c.resident_id}:{c.serial_hex}")
        return cls(len(phones), len(cards))


@dataclass(frozen=True)
class Recovery:
    regime: str
    phones: int
    phones_remote: int
    phone_rule: str
    cards: int
    cards_remote: int
    card_rule: str  # today's card
    next_generation_rule: str
    counter_holders: int
    counter_staff_hours: float
    working_days: float
    on_hold: bool  # asked while the certificates are suspended


def _online(operation: Operation, evidence: frozenset[Evidence], regime: Regime, oids: Mapping[AssuranceLevel, str],
            on_hold: bool) -> tuple[bool, str]:  # fmt: skip
    request = PolicyRequest(operation, Channel.ONLINE_SIGN_CERT, Role.HOLDER_APP, None, None, evidence,
                            HolderState(age=40, sign_cert_valid=not on_hold), holder_bound=True)  # fmt: skip
    decision = decide(request, regime, oids)
    return decision.allowed, decision.rule_id


def recovery(holders: Holders, regime: Regime, oids: Mapping[AssuranceLevel, str], scenario: Scenario,
             next_generation_share: float, *, on_hold: bool) -> Recovery:  # fmt: skip
    """How ``holders`` recover under ``regime``; those who must visit go to ``scenario``'s counter."""
    phone_ok, phone_rule = _online(*PHONE, regime, oids, on_hold)
    card_ok, card_rule = _online(*CARD, regime, oids, on_hold)
    next_ok, next_rule = _online(*NEXT_GENERATION, regime, oids, on_hold)
    next_generation = round(holders.cards * next_generation_share)
    cards_remote = (holders.cards - next_generation if card_ok else 0) + (next_generation if next_ok else 0)
    phones_remote = holders.phones if phone_ok else 0
    # a phone that cannot re-key online needs a new phone certificate after a counter visit for its card
    counter = holders.cards - cards_remote + holders.phones - phones_remote
    at_counter = dataclasses.replace(
        scenario.with_values({name: 0.0 for name in scenario.assumptions if name.startswith("uptake.")}),
        years={"incident": YearDemand(certificate_renewals=counter)},
    )
    router = Router(at_counter, regime, oids)
    row = regime_year(router, "incident", legs(router))
    return Recovery(regime.name, holders.phones, phones_remote, phone_rule, holders.cards, cards_remote, card_rule,
                    next_rule, counter, row.counter_staff_hours, row.working_days, on_hold)  # fmt: skip
