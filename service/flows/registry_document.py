"""The registry document: municipalities, residents and their cards, as ``POST /v1/registry/import``, ``POST
/v1/residents`` and ``koshin registry import`` submit them. Strict (unknown fields are errors), and registry text
that goes into certificates is held to the repertoire of ca/text.py. It lives with the flows that take it, so
the API and the CLI both import it from here."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ca.holder import Holder
from ca.text import registry_text

# Registry text that goes into certificates: NFC, and only the repertoire ca/text.py documents (a refusal is a
# 422 naming the field and the code point).
RegistryText = Annotated[str, AfterValidator(registry_text)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MunicipalityIn(Strict):
    code: str = Field(pattern=r"^[0-9]{5,6}$", description="総務省 local government code")
    name: RegistryText = Field(min_length=1, max_length=64)
    prefecture: RegistryText = Field(min_length=1, max_length=64)
    post_office_delegation: bool = False


class CardIn(Strict):
    number: str = Field(pattern=r"^[0-9A-Z]{4,32}$")
    issued_on: date


def sex_code(value: object) -> str:
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


class ResidentIn(Strict):
    resident_number: str = Field(pattern=r"^[0-9A-Za-z-]{4,32}$")
    name: RegistryText = Field(min_length=1, max_length=128)
    address: RegistryText = Field(min_length=1, max_length=256)
    municipality: str = Field(pattern=r"^[0-9]{5,6}$")
    date_of_birth: date
    sex: str
    adult_ward: bool = False
    evacuee: bool = False
    stay_limit: date | None = None  # a foreign resident's period of stay ends on this day: cards and certificates too
    cards: list[CardIn] = Field(default_factory=list, max_length=10)

    _sex_code = field_validator("sex", mode="before")(sex_code)


class RegistryDocument(Strict):
    municipalities: list[MunicipalityIn] = Field(default_factory=list, max_length=2000)
    residents: list[ResidentIn] = Field(default_factory=list, max_length=1000)
