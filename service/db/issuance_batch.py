"""A batch of issuance requests in two write transactions: every item's intents in one, every item's outcome in
the other (service/flows/pipeline.py ``issue_batch``). Each item runs inside a savepoint of its own, so an item
whose authorisation was spent meanwhile, or whose serial is taken, is rolled back alone (its audit records
with it) and the others commit; each item's audit records name its own actor and policy rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ca.errors import SerialCollision
from service.db.issuance_store import Intent, IssuanceStore, Outcome, OutcomeRecords, Spend, intents_in, outcome_in
from service.db.unit import Acting
from service.errors import IssuanceInterrupted, NotFound, ProofingEventUnusable

ITEM_ERRORS = (ProofingEventUnusable, SerialCollision, IssuanceInterrupted, NotFound)


@dataclass(frozen=True)
class IntentItem:
    who: Acting
    spend: Spend
    intents: Sequence[Intent]


@dataclass(frozen=True)
class OutcomeItem:
    who: Acting
    outcome: Outcome


class BatchIssuanceStore(IssuanceStore):
    def record_intents_batch(self, items: Sequence[IntentItem], now: datetime) -> list[Exception | None]:
        """Every item's intent transaction, in one transaction: None for an item recorded, else its error."""
        results: list[Exception | None] = []
        with self._write() as tx:
            for item in items:
                tx.who = item.who
                savepoint, mark = tx.connection.begin_nested(), len(tx.entries)
                try:
                    intents_in(tx, item.spend, item.intents, now)
                except ITEM_ERRORS as exc:
                    savepoint.rollback()
                    del tx.entries[mark:]
                    results.append(exc)
                    continue
                savepoint.commit()
                results.append(None)
        return results

    def record_outcomes_batch(self, items: Sequence[OutcomeItem], now: datetime) -> list[OutcomeRecords | Exception]:
        """Every item's outcome transaction, in one transaction: the records of each, or its error."""
        results: list[OutcomeRecords | Exception] = []
        with self._write() as tx:
            for item in items:
                tx.who = item.who
                savepoint, mark = tx.connection.begin_nested(), len(tx.entries)
                try:
                    records = outcome_in(tx, item.outcome, now)
                except ITEM_ERRORS as exc:
                    savepoint.rollback()
                    del tx.entries[mark:]
                    results.append(exc)
                    continue
                savepoint.commit()
                results.append(records)
        return results
