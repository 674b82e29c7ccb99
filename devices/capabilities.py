"""Capability profiles of the token kinds koshin models (profiles/tokens/*.yaml): station, card, phone, and
the hypothetical next-gen card. A profile says whether the chip can generate keys and how each credential's
PIN looks and locks."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.errors import TokenProfileInvalid


class CredentialSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    pin_pattern: str
    max_failures: int = Field(gt=0, le=100)

    def accepts(self, pin: str) -> bool:
        return re.fullmatch(self.pin_pattern, pin) is not None


class TokenProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    description: str
    can_generate_keys: bool
    accepts_injected_keys: bool
    credentials: dict[str, CredentialSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _patterns_compile(self) -> Self:
        for name, spec in self.credentials.items():
            try:
                re.compile(spec.pin_pattern)
            except re.error as exc:
                raise ValueError(f"credential {name}: bad pin_pattern: {exc}") from exc
        return self


def load_token_profile(kind: str, directory: Path | None = None) -> TokenProfile:
    base = Path(str(resources.files("profiles"))) / "tokens" if directory is None else directory
    path = base / f"{kind}.yaml"
    try:
        profile = TokenProfile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise TokenProfileInvalid(f"no token profile {kind!r} in {base}") from exc
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise TokenProfileInvalid(f"{path}: {exc}") from exc
    if profile.kind != kind:
        raise TokenProfileInvalid(f"{path}: kind {profile.kind!r} differs from the file name")
    return profile
