"""JPKI certificate validity periods.

A certificate is valid from issuance through the holder's 5th birthday after the
issuance date (6th if it is a renewal issued within the renewal window before the
predecessor's notAfter), capped by a foreign resident's stay limit, the card's expiry date,
for a signature certificate the notAfter of the user-authentication certificate it goes
with, and the issuing CA's notAfter (domain brief §2.2).

All calendar reasoning uses Japan dates (JST, UTC+9, no DST). "Through a day" means
23:59:59 JST on that day, since RFC 5280 notAfter is inclusive. Returned datetimes are
aware UTC with microsecond=0.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from ca.errors import ValidityError

JST: timezone = timezone(timedelta(hours=9), "JST")
RENEWAL_WINDOW_MONTHS = 3
STAY_LIMIT_RULE = "stay limit"
AUTH_CERT_RULE = "user-authentication certificate notAfter"


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {moment!r}")


def _birthday_in(date_of_birth: date, year: int) -> date:
    """The holder's birthday in ``year``; 29 February maps to 28 February in non-leap years."""
    if date_of_birth.month == 2 and date_of_birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date_of_birth.replace(year=year)


def _subtract_months(day: date, months: int) -> date:
    """Calendar month subtraction, clamping the day to the target month's length."""
    index = day.year * 12 + (day.month - 1) - months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def jst_date(moment: datetime) -> date:
    """The Japan calendar date of an aware datetime."""
    _require_aware("moment", moment)
    return moment.astimezone(JST).date()


def nth_birthday_after(date_of_birth: date, after: date, n: int) -> date:
    """The ``n``-th birthday strictly after ``after`` (n >= 1).

    A birthday falling on ``after`` itself does not count. A 29 February birthday is
    taken as 28 February in non-leap years: under Japanese law on age calculation
    (年齢計算ニ関スル法律 with Civil Code art. 143) a person reaches the next age at the
    end of the day before the birthday anniversary, i.e. the end of 28 February.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if date_of_birth > after:
        raise ValidityError(f"date of birth {date_of_birth} is after {after}")
    first_year = after.year if _birthday_in(date_of_birth, after.year) > after else after.year + 1
    return _birthday_in(date_of_birth, first_year + n - 1)


def in_renewal_window(issued_on: date, predecessor_not_after: datetime) -> bool:
    """Whether ``issued_on`` lies within the renewal window of the predecessor certificate.

    The window is the closed date range [expiry - 3 calendar months, expiry], where expiry
    is the JST date of the predecessor's notAfter.
    """
    _require_aware("predecessor_not_after", predecessor_not_after)
    expires_on = jst_date(predecessor_not_after)
    return _subtract_months(expires_on, RENEWAL_WINDOW_MONTHS) <= issued_on <= expires_on


def end_of_jst_day(day: date) -> datetime:
    """23:59:59 JST on ``day``, as an aware UTC datetime."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=JST).astimezone(UTC)


@dataclass(frozen=True)
class Validity:
    """A certificate validity period and the rule that determined notAfter."""

    not_before: datetime
    not_after: datetime
    rule: str


def certificate_validity(
    *,
    issued_at: datetime,
    date_of_birth: date,
    card_expires: date | None = None,
    predecessor_not_after: datetime | None = None,
    ca_not_after: datetime | None = None,
    stay_limit: date | None = None,
    auth_not_after: datetime | None = None,
) -> Validity:
    """Compute the validity period of a JPKI certificate issued at ``issued_at``.

    ``stay_limit`` (a foreign resident's period of stay) and ``card_expires`` cap notAfter at
    23:59:59 JST on that date; ``auth_not_after`` (for a signature certificate: the notAfter of
    the holder's user-authentication certificate) and ``ca_not_after`` cap it at that instant
    (truncated down to the whole second so the cap is never exceeded). When a cap coincides
    with the birthday-based notAfter, the birthday rule is reported; when caps coincide, the
    first of stay limit, card expiry, user-authentication certificate, CA is.
    """
    _require_aware("issued_at", issued_at)
    for name, moment in (("predecessor_not_after", predecessor_not_after), ("ca_not_after", ca_not_after),
                         ("auth_not_after", auth_not_after)):  # fmt: skip
        if moment is not None:
            _require_aware(name, moment)

    not_before = issued_at.astimezone(UTC).replace(microsecond=0)
    issued_on = jst_date(issued_at)
    if date_of_birth > issued_on:
        raise ValidityError(f"date of birth {date_of_birth} is after the issuance date {issued_on} (JST)")

    if predecessor_not_after is not None and in_renewal_window(issued_on, predecessor_not_after):
        years, rule = 6, "6th birthday (renewal window)"
    else:
        years, rule = 5, "5th birthday"
    not_after = end_of_jst_day(nth_birthday_after(date_of_birth, issued_on, years))

    caps: list[tuple[datetime, str]] = []
    if stay_limit is not None:
        caps.append((end_of_jst_day(stay_limit), STAY_LIMIT_RULE))
    if card_expires is not None:
        caps.append((end_of_jst_day(card_expires), "card expiry"))
    if auth_not_after is not None:
        caps.append((auth_not_after.astimezone(UTC).replace(microsecond=0), AUTH_CERT_RULE))
    if ca_not_after is not None:
        caps.append((ca_not_after.astimezone(UTC).replace(microsecond=0), "issuing CA notAfter"))
    for cap, cap_rule in caps:
        if cap < not_after:
            not_after, rule = cap, cap_rule

    if not_after <= not_before:
        raise ValidityError(
            f"empty validity period: notAfter {not_after.isoformat()} ({rule}) is not after "
            f"notBefore {not_before.isoformat()}"
        )
    return Validity(not_before=not_before, not_after=not_after, rule=rule)
