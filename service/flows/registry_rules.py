"""Registry rules that are not policy: card validity by age, and which changes revoke what.

- A card runs through the holder's 10th birthday after issuance when the holder is an adult on the issuance
  date, the 5th otherwise. The age of majority for this rule was 20 until 2022-03-31 and 18 from 2022-04-01
  (domain brief §2.2). A foreign resident's card ends at the stay limit when that comes first (§2.2).
- A change of name, address, date of birth or sex revokes the resident's signature certificates (reason
  affiliationChanged) and leaves user-authentication certificates valid; a lost card revokes both.
"""

from __future__ import annotations

from datetime import date

from ca.validity import nth_birthday_after

MAJORITY_CHANGE = date(2022, 4, 1)
BASIC_ATTRIBUTES = ("name", "address", "date_of_birth", "sex")


def age_on(date_of_birth: date, day: date) -> int:
    years = day.year - date_of_birth.year
    return years - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def card_expiry(date_of_birth: date, issued_on: date, stay_limit: date | None = None) -> date:
    majority = 20 if issued_on < MAJORITY_CHANGE else 18
    birthdays = 10 if age_on(date_of_birth, issued_on) >= majority else 5
    by_age = nth_birthday_after(date_of_birth, issued_on, birthdays)
    return by_age if stay_limit is None else min(by_age, stay_limit)


def changed_basic_attributes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """The four basic attributes whose value differs (address changes include a municipality move)."""
    changed = [name for name in BASIC_ATTRIBUTES if name in after and after[name] != before.get(name)]
    moved = "municipality_code" in after and after["municipality_code"] != before.get("municipality_code")
    if moved and "address" not in changed:
        changed.append("address")
    return changed
