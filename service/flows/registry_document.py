"""The registry document: municipalities, residents and their cards, as ``POST /v1/registry/import``, ``POST
/v1/residents`` and ``koshin registry import`` submit them. Strict (unknown fields are errors), and registry text
that goes into certificates is held to the repertoire of ca/text.py. It lives with the flows that take it, so
the API and the CLI both import it from here."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema

from ca.holder import Holder
from ca.text import registry_text


class WithJsonSchemaMark:
    """Marks a field's JSON schema as registry text: the OpenAPI document (service/api/openapi.py) gives it the
    one RegistryText pattern, ca/text.py's rule."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        out = dict(handler(schema))
        out["x-koshin-repertoire"] = True
        return out


# Registry text that goes into certificates: NFC, and only the repertoire ca/text.py documents (a refusal is a
# 422 naming the field and the code point).
RegistryText = Annotated[str, AfterValidator(registry_text), WithJsonSchemaMark()]


class Strict(BaseModel):
    """Unknown fields are errors, flags are JSON booleans (StrictBool: not 0 or "yes"), and nothing is trimmed:
    what the schema (/openapi.json) says a field takes is what it takes, no more (a code with a space around it
    is refused, as its pattern says)."""

    model_config = ConfigDict(extra="forbid")


SexName = Literal["male", "female", "not_known", "not_applicable", "0", "1", "2", "9"]  # ISO/IEC 5218


class MunicipalityIn(Strict):
    code: str = Field(pattern=r"^[0-9]{5,6}$", description="総務省 local government code")
    name: RegistryText = Field(min_length=1, max_length=64)
    prefecture: RegistryText = Field(min_length=1, max_length=64)
    post_office_delegation: StrictBool = False


def _iso_text(value: object) -> object:
    """A JSON date is ISO 8601 text ("1988-04-12"), never a number a lax parser would read as a timestamp."""
    if not isinstance(value, str | date):
        raise ValueError("a date is ISO 8601 text, e.g. 1988-04-12")
    return value


def _plausible(day: date) -> date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"a registry date is between {FIRST_YEAR} and {LAST_YEAR}")
    return day


# A registry date (birth, card issue, period of stay): 1900-2199, as the schema's pattern says; outside it the age
# rules (a 10-year card from a birthday in 9995) would leave the calendar.
FIRST_YEAR, LAST_YEAR = 1900, 2199
DATE_PATTERN = r"^(19|2[01])[0-9]{2}-"
RegistryDate = Annotated[
    date, BeforeValidator(_iso_text), AfterValidator(_plausible), Field(json_schema_extra={"pattern": DATE_PATTERN})
]


class CardIn(Strict):
    number: str = Field(pattern=r"^[0-9A-Z]{4,32}$")
    issued_on: RegistryDate


def sex_code(value: object) -> str:
    """The ISO 5218 digit of a ``SexName``."""
    return Holder.model_validate(
        {
            "name": "x",
            "address": "x",
            "prefecture": "x",
            "municipality": "x",
            "date_of_birth": "2000-01-01",
            "sex": value,
        }
    ).sex


CARDS_AFTER_BIRTH = "each card's issued_on is on or after the resident's date_of_birth (a 422 otherwise)"


class ResidentIn(Strict):
    resident_number: str = Field(pattern=r"^[0-9A-Za-z-]{4,32}$")
    name: RegistryText = Field(min_length=1, max_length=128)
    address: RegistryText = Field(min_length=1, max_length=256)
    municipality: str = Field(pattern=r"^[0-9]{5,6}$")
    date_of_birth: RegistryDate
    sex: SexName
    adult_ward: StrictBool = False
    evacuee: StrictBool = False
    stay_limit: RegistryDate | None = None  # a foreign resident's period of stay ends then: cards and certificates too
    cards: list[CardIn] = Field(default_factory=list, max_length=10, description=CARDS_AFTER_BIRTH)

    _sex_code = field_validator("sex", mode="after")(sex_code)

    @model_validator(mode="after")
    def _cards_after_birth(self) -> ResidentIn:
        for card in self.cards:
            if card.issued_on < self.date_of_birth:
                raise ValueError(f"card {card.number} is issued on {card.issued_on}, before the date of birth")
        return self


class RegistryDocument(Strict):
    municipalities: list[MunicipalityIn] = Field(default_factory=list, max_length=2000)
    residents: list[ResidentIn] = Field(default_factory=list, max_length=1000)
