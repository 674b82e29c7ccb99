"""Unit tests for ca.validity (JPKI certificate validity periods)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ca.errors import ValidityError
from ca.validity import (
    JST,
    RENEWAL_WINDOW_MONTHS,
    Validity,
    certificate_validity,
    end_of_jst_day,
    in_renewal_window,
    jst_date,
    nth_birthday_after,
)


def jst(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST)


def test_jst_offset_and_window_constant() -> None:
    assert JST.utcoffset(None) == timedelta(hours=9)
    assert RENEWAL_WINDOW_MONTHS == 3


def test_end_of_jst_day_is_utc_1459_59() -> None:
    end = end_of_jst_day(date(2030, 2, 17))
    assert end == datetime(2030, 2, 17, 14, 59, 59, tzinfo=UTC)
    assert end.utcoffset() == timedelta(0)
    assert end.microsecond == 0


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 10, 26, 20, 0, tzinfo=UTC), date(2025, 10, 27)),
        (datetime(2025, 10, 26, 14, 59, 59, tzinfo=UTC), date(2025, 10, 26)),
        (datetime(2025, 10, 26, 15, 0, tzinfo=UTC), date(2025, 10, 27)),
        (jst(2025, 10, 27, 0, 0), date(2025, 10, 27)),
    ],
)
def test_jst_date(moment: datetime, expected: date) -> None:
    assert jst_date(moment) == expected


def test_jst_date_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        jst_date(datetime(2025, 10, 27, 10, 0))


@pytest.mark.parametrize(
    ("dob", "after", "n", "expected"),
    [
        (date(1990, 2, 17), date(2025, 10, 27), 5, date(2030, 2, 17)),
        (date(1990, 2, 17), date(2025, 2, 17), 5, date(2030, 2, 17)),  # on the birthday
        (date(1990, 2, 17), date(2025, 2, 16), 5, date(2029, 2, 17)),  # day before
        (date(1990, 2, 17), date(2025, 2, 16), 1, date(2025, 2, 17)),
        (date(1990, 2, 17), date(2025, 2, 17), 1, date(2026, 2, 17)),
        (date(1990, 2, 17), date(2025, 10, 27), 6, date(2031, 2, 17)),
        (date(2025, 10, 27), date(2025, 10, 27), 1, date(2026, 10, 27)),  # born on issuance day
        # 29 February: non-leap target year -> 28 February; leap target year -> 29 February.
        (date(2000, 2, 29), date(2020, 3, 1), 5, date(2025, 2, 28)),
        (date(2000, 2, 29), date(2023, 3, 1), 5, date(2028, 2, 29)),
        (date(2000, 2, 29), date(2023, 2, 27), 1, date(2023, 2, 28)),
        (date(2000, 2, 29), date(2023, 2, 28), 1, date(2024, 2, 29)),  # 28 Feb is the birthday
        (date(2000, 2, 29), date(2024, 2, 29), 1, date(2025, 2, 28)),
        (date(2000, 2, 29), date(2024, 2, 28), 1, date(2024, 2, 29)),
    ],
)
def test_nth_birthday_after(dob: date, after: date, n: int, expected: date) -> None:
    assert nth_birthday_after(dob, after, n) == expected


def test_nth_birthday_after_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n must be"):
        nth_birthday_after(date(1990, 2, 17), date(2025, 1, 1), 0)
    with pytest.raises(ValidityError, match="after"):
        nth_birthday_after(date(2026, 1, 1), date(2025, 1, 1), 5)


@pytest.mark.parametrize(
    ("issued_on", "expiry_day", "expected"),
    [
        (date(2025, 9, 14), date(2025, 12, 15), False),  # one day before the window
        (date(2025, 9, 15), date(2025, 12, 15), True),  # first day of the window
        (date(2025, 11, 1), date(2025, 12, 15), True),
        (date(2025, 12, 15), date(2025, 12, 15), True),  # predecessor's last day
        (date(2025, 12, 16), date(2025, 12, 15), False),  # after expiry
        # Month-end clamping: 31 May minus 3 months is 28 Feb (29 Feb in a leap year).
        (date(2025, 2, 27), date(2025, 5, 31), False),
        (date(2025, 2, 28), date(2025, 5, 31), True),
        (date(2024, 2, 28), date(2024, 5, 31), False),
        (date(2024, 2, 29), date(2024, 5, 31), True),
    ],
)
def test_in_renewal_window(issued_on: date, expiry_day: date, expected: bool) -> None:
    assert in_renewal_window(issued_on, end_of_jst_day(expiry_day)) is expected


def test_in_renewal_window_uses_jst_date_of_predecessor_not_after() -> None:
    # 2025-12-15T15:30Z is already 2025-12-16 in Japan.
    predecessor = datetime(2025, 12, 15, 15, 30, tzinfo=UTC)
    assert in_renewal_window(date(2025, 12, 16), predecessor)
    assert not in_renewal_window(date(2025, 9, 15), predecessor)
    assert in_renewal_window(date(2025, 9, 16), predecessor)


def test_in_renewal_window_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        in_renewal_window(date(2025, 11, 1), datetime(2025, 12, 15, 23, 59, 59))


def test_jpki_test_card_example() -> None:
    validity = certificate_validity(issued_at=jst(2025, 10, 27, 14, 30), date_of_birth=date(1990, 2, 17))
    assert validity == Validity(
        not_before=datetime(2025, 10, 27, 5, 30, tzinfo=UTC),
        not_after=datetime(2030, 2, 17, 14, 59, 59, tzinfo=UTC),
        rule="5th birthday",
    )
    assert validity.not_after.astimezone(JST) == datetime(2030, 2, 17, 23, 59, 59, tzinfo=JST)


@pytest.mark.parametrize(
    ("issued_on", "expected_end"),
    [
        (date(2025, 2, 17), date(2030, 2, 17)),  # issued on the birthday: does not count
        (date(2025, 2, 16), date(2029, 2, 17)),  # issued the day before the birthday
        (date(2025, 2, 18), date(2030, 2, 17)),
    ],
)
def test_issuance_around_birthday(issued_on: date, expected_end: date) -> None:
    issued_at = jst(issued_on.year, issued_on.month, issued_on.day)
    validity = certificate_validity(issued_at=issued_at, date_of_birth=date(1990, 2, 17))
    assert validity.not_after == end_of_jst_day(expected_end)
    assert validity.rule == "5th birthday"


@pytest.mark.parametrize(
    ("issued_on", "expected_end"),
    [
        (date(2020, 3, 1), date(2025, 2, 28)),  # 2025 not a leap year
        (date(2023, 3, 1), date(2028, 2, 29)),  # 2028 is a leap year
    ],
)
def test_leap_day_birthday(issued_on: date, expected_end: date) -> None:
    issued_at = jst(issued_on.year, issued_on.month, issued_on.day)
    validity = certificate_validity(issued_at=issued_at, date_of_birth=date(2000, 2, 29))
    assert validity.not_after == end_of_jst_day(expected_end)


def test_issued_late_evening_utc_is_next_jst_day() -> None:
    # 2025-10-26T20:00Z is 2025-10-27 05:00 JST: the birthday itself, so it does not count.
    issued_at = datetime(2025, 10, 26, 20, 0, 0, 123456, tzinfo=UTC)
    validity = certificate_validity(issued_at=issued_at, date_of_birth=date(1990, 10, 27))
    assert validity.not_before == datetime(2025, 10, 26, 20, 0, 0, tzinfo=UTC)
    assert validity.not_after == end_of_jst_day(date(2030, 10, 27))


def test_not_before_truncated_and_converted_to_utc() -> None:
    issued_at = datetime(2025, 10, 27, 9, 15, 42, 999999, tzinfo=JST)
    validity = certificate_validity(issued_at=issued_at, date_of_birth=date(1990, 2, 17))
    assert validity.not_before == datetime(2025, 10, 27, 0, 15, 42, tzinfo=UTC)
    assert validity.not_before.microsecond == 0
    assert validity.not_before.utcoffset() == timedelta(0)
    assert validity.not_after.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("predecessor_expiry", "expected_end", "expected_rule"),
    [
        (date(2026, 1, 27), date(2031, 2, 17), "6th birthday (renewal window)"),  # window start
        (date(2025, 10, 27), date(2031, 2, 17), "6th birthday (renewal window)"),  # expiry day
        (date(2025, 12, 1), date(2031, 2, 17), "6th birthday (renewal window)"),
        (date(2026, 1, 28), date(2030, 2, 17), "5th birthday"),  # too early
        (date(2025, 10, 26), date(2030, 2, 17), "5th birthday"),  # predecessor already expired
    ],
)
def test_renewal_window(predecessor_expiry: date, expected_end: date, expected_rule: str) -> None:
    validity = certificate_validity(
        issued_at=jst(2025, 10, 27),
        date_of_birth=date(1990, 2, 17),
        predecessor_not_after=end_of_jst_day(predecessor_expiry),
    )
    assert validity.not_after == end_of_jst_day(expected_end)
    assert validity.rule == expected_rule


@pytest.mark.parametrize(
    ("card_expires", "expected_end", "expected_rule"),
    [
        (date(2029, 6, 30), date(2029, 6, 30), "card expiry"),
        (date(2030, 2, 16), date(2030, 2, 16), "card expiry"),
        (date(2030, 2, 17), date(2030, 2, 17), "5th birthday"),  # tie: cap not binding
        (date(2035, 1, 1), date(2030, 2, 17), "5th birthday"),
        (date(2025, 10, 27), date(2025, 10, 27), "card expiry"),  # expires on the issuance day
    ],
)
def test_card_expiry_cap(card_expires: date, expected_end: date, expected_rule: str) -> None:
    validity = certificate_validity(
        issued_at=jst(2025, 10, 27), date_of_birth=date(1990, 2, 17), card_expires=card_expires
    )
    assert validity.not_after == end_of_jst_day(expected_end)
    assert validity.rule == expected_rule


def test_card_expiry_caps_renewal() -> None:
    validity = certificate_validity(
        issued_at=jst(2025, 10, 27),
        date_of_birth=date(1990, 2, 17),
        card_expires=date(2030, 12, 31),
        predecessor_not_after=end_of_jst_day(date(2025, 12, 1)),
    )
    assert validity.not_after == end_of_jst_day(date(2030, 12, 31))
    assert validity.rule == "card expiry"


@pytest.mark.parametrize(
    ("ca_not_after", "expected", "expected_rule"),
    [
        (
            datetime(2028, 1, 1, 0, 0, tzinfo=UTC),
            datetime(2028, 1, 1, 0, 0, tzinfo=UTC),
            "issuing CA notAfter",
        ),
        (  # exact instant, expressed in JST, with sub-second part truncated down
            datetime(2028, 1, 1, 12, 34, 56, 789000, tzinfo=JST),
            datetime(2028, 1, 1, 3, 34, 56, tzinfo=UTC),
            "issuing CA notAfter",
        ),
        (
            datetime(2040, 1, 1, tzinfo=UTC),
            datetime(2030, 2, 17, 14, 59, 59, tzinfo=UTC),
            "5th birthday",
        ),
    ],
)
def test_ca_not_after_cap(ca_not_after: datetime, expected: datetime, expected_rule: str) -> None:
    validity = certificate_validity(
        issued_at=jst(2025, 10, 27), date_of_birth=date(1990, 2, 17), ca_not_after=ca_not_after
    )
    assert validity.not_after == expected
    assert validity.not_after.microsecond == 0
    assert validity.rule == expected_rule


def test_earliest_cap_wins() -> None:
    validity = certificate_validity(
        issued_at=jst(2025, 10, 27),
        date_of_birth=date(1990, 2, 17),
        card_expires=date(2029, 1, 1),
        ca_not_after=datetime(2028, 6, 1, tzinfo=UTC),
    )
    assert validity.not_after == datetime(2028, 6, 1, tzinfo=UTC)
    assert validity.rule == "issuing CA notAfter"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issued_at": datetime(2025, 10, 27, 10, 0)},
        {"issued_at": jst(2025, 10, 27), "ca_not_after": datetime(2030, 1, 1)},
        {"issued_at": jst(2025, 10, 27), "predecessor_not_after": datetime(2025, 12, 1)},
    ],
)
def test_naive_datetimes_rejected(kwargs: dict[str, datetime]) -> None:
    with pytest.raises(ValueError, match="aware"):
        certificate_validity(date_of_birth=date(1990, 2, 17), **kwargs)


def test_date_of_birth_after_issuance_rejected() -> None:
    with pytest.raises(ValidityError, match="date of birth"):
        certificate_validity(issued_at=jst(2025, 10, 27), date_of_birth=date(2025, 10, 28))


def test_date_of_birth_compared_with_jst_issuance_date() -> None:
    # 2025-10-26T20:00Z is 2025-10-27 JST, so a DOB of 2025-10-27 is not in the future.
    validity = certificate_validity(
        issued_at=datetime(2025, 10, 26, 20, 0, tzinfo=UTC), date_of_birth=date(2025, 10, 27)
    )
    assert validity.not_after == end_of_jst_day(date(2030, 10, 27))


def test_expired_card_raises_validity_error() -> None:
    with pytest.raises(ValidityError, match="card expiry"):
        certificate_validity(
            issued_at=jst(2025, 10, 27), date_of_birth=date(1990, 2, 17), card_expires=date(2025, 10, 26)
        )


def test_ca_not_after_before_issuance_raises_validity_error() -> None:
    with pytest.raises(ValidityError, match="issuing CA notAfter"):
        certificate_validity(
            issued_at=jst(2025, 10, 27, 10, 0),
            date_of_birth=date(1990, 2, 17),
            ca_not_after=jst(2025, 10, 27, 10, 0),
        )


def test_validity_is_frozen() -> None:
    validity = certificate_validity(issued_at=jst(2025, 10, 27), date_of_birth=date(1990, 2, 17))
    with pytest.raises(AttributeError):
        validity.rule = "other"  # type: ignore[misc]
