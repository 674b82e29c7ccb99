"""ca.validity's caps from the brief §2.2: a foreign resident's stay limit, and the user-authentication
certificate's notAfter for a signature certificate, each reported under its own rule name."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ca.errors import ValidityError
from ca.validity import AUTH_CERT_RULE, JST, STAY_LIMIT_RULE, certificate_validity, end_of_jst_day

ISSUED = datetime(2025, 6, 1, 10, 0, tzinfo=JST)
BORN = date(1990, 9, 9)  # 5th birthday after issuance: 2029-09-09


def test_no_cap_is_the_birthday_rule() -> None:
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN)
    assert (validity.not_after, validity.rule) == (end_of_jst_day(date(2029, 9, 9)), "5th birthday")


def test_stay_limit_caps_at_the_end_of_that_jst_day() -> None:
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=date(2027, 3, 31))
    assert validity.not_after == datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC)
    assert validity.rule == STAY_LIMIT_RULE == "stay limit"


def test_stay_limit_is_reported_when_the_card_ends_the_same_day() -> None:
    """A foreign resident's card ends at the stay limit too; the certificate names the stay limit."""
    limit = date(2027, 3, 31)
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=limit, card_expires=limit)
    assert (validity.not_after, validity.rule) == (end_of_jst_day(limit), "stay limit")


def test_an_earlier_card_expiry_still_wins_over_the_stay_limit() -> None:
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=date(2029, 1, 1),
                                    card_expires=date(2028, 1, 1))  # fmt: skip
    assert (validity.not_after, validity.rule) == (end_of_jst_day(date(2028, 1, 1)), "card expiry")


def test_a_stay_limit_after_the_birthday_rule_changes_nothing() -> None:
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=date(2031, 1, 1))
    assert validity.rule == "5th birthday"


def test_a_stay_limit_before_issuance_is_an_empty_period() -> None:
    with pytest.raises(ValidityError, match="stay limit"):
        certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=date(2025, 5, 31))


def test_auth_certificate_caps_the_signature_certificate_to_the_second() -> None:
    auth_end = datetime(2029, 2, 17, 14, 59, 59, 700_000, tzinfo=UTC)
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, auth_not_after=auth_end)
    assert validity.not_after == auth_end.replace(microsecond=0)  # never past the auth certificate
    assert validity.rule == AUTH_CERT_RULE == "user-authentication certificate notAfter"


def test_auth_certificate_outliving_the_birthday_rule_changes_nothing() -> None:
    later = end_of_jst_day(date(2029, 9, 9)) + timedelta(days=30)
    assert certificate_validity(issued_at=ISSUED, date_of_birth=BORN, auth_not_after=later).rule == "5th birthday"


def test_auth_certificate_ending_with_the_card_reports_the_card() -> None:
    card = date(2029, 2, 17)
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, card_expires=card,
                                    auth_not_after=end_of_jst_day(card))  # fmt: skip
    assert validity.rule == "card expiry"


def test_the_lowest_cap_wins() -> None:
    ca_end = datetime(2026, 1, 1, tzinfo=UTC)
    validity = certificate_validity(issued_at=ISSUED, date_of_birth=BORN, stay_limit=date(2027, 3, 31),
                                    auth_not_after=datetime(2026, 6, 1, tzinfo=UTC), ca_not_after=ca_end)  # fmt: skip
    assert (validity.not_after, validity.rule) == (ca_end, "issuing CA notAfter")


def test_auth_not_after_must_be_aware() -> None:
    with pytest.raises(ValueError, match="auth_not_after"):
        certificate_validity(issued_at=ISSUED, date_of_birth=BORN, auth_not_after=datetime(2029, 1, 1))


def test_an_expired_auth_certificate_is_an_empty_period() -> None:
    with pytest.raises(ValidityError, match="user-authentication"):
        certificate_validity(issued_at=ISSUED, date_of_birth=BORN, auth_not_after=datetime(2025, 1, 1, tzinfo=UTC))
