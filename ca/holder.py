"""The holder record a certificate is issued for, and the JPKI encodings of the four basic attributes."""

from __future__ import annotations

import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ca.errors import HolderInvalid
from ca.text import registry_text

# ISO/IEC 5218 codes, as UTF8String digits in the sex otherName (the JPKI spec's own table was not read).
_SEX_CODES = {
    "male": "1", "m": "1", "1": "1",
    "female": "2", "f": "2", "2": "2",
    "not_known": "0", "unknown": "0", "0": "0",
    "not_applicable": "9", "9": "9",
}  # fmt: skip

# Japanese eras for the JPKI date-of-birth encoding: era digit + Gregorian YYYYMMDD (e.g. 419900102).
_ERAS: tuple[tuple[date, int], ...] = (
    (date(2019, 5, 1), 5),  # Reiwa
    (date(1989, 1, 8), 4),  # Heisei
    (date(1926, 12, 25), 3),  # Showa
    (date(1912, 7, 30), 2),  # Taisho
    (date(1868, 10, 23), 1),  # Meiji
)


class Holder(BaseModel):
    """Who a certificate is for. ``H.json`` of ``koshin ca issue`` parses into this."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    address: str = Field(min_length=1, max_length=256)
    prefecture: str = Field(min_length=1, max_length=64)
    municipality: str = Field(min_length=1, max_length=64)
    date_of_birth: date
    sex: Literal["0", "1", "2", "9"]
    card_expires: date | None = None
    stay_limit: date | None = None  # a foreign resident's period of stay ends on this day (brief §2.2)

    @field_validator("name", "address", "prefecture", "municipality")
    @classmethod
    def _repertoire(cls, value: str) -> str:
        return registry_text(value)  # TextRefused is a ValueError: pydantic reports it with the field

    @field_validator("sex", mode="before")
    @classmethod
    def _sex_code(cls, value: object) -> str:
        code = _SEX_CODES.get(str(value).strip().lower())
        if code is None:
            raise ValueError("sex must be male, female, not_known, not_applicable or an ISO 5218 digit")
        return code

    def age_on(self, day: date) -> int:
        years = day.year - self.date_of_birth.year
        return years - ((day.month, day.day) < (self.date_of_birth.month, self.date_of_birth.day))


def jpki_date_of_birth(day: date) -> str:
    for start, era in _ERAS:
        if day >= start:
            return f"{era}{day:%Y%m%d}"
    raise HolderInvalid(f"date of birth {day} precedes the Meiji era")


def parse_holder(data: bytes | str) -> Holder:
    """Parse a holder JSON document; errors name every missing or invalid field."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HolderInvalid(f"holder file is not JSON: {exc}") from exc
    try:
        return Holder.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}" for err in exc.errors()
        )
        raise HolderInvalid(f"holder record invalid: {problems}") from exc
