"""Configuration from KOSHIN_* environment variables, read when a command or app starts (never at import)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hsm import KeyAlgorithm


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "koshin"


class Settings(BaseSettings):
    """Every knob koshin reads. See README, "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="KOSHIN_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home)
    pkcs11_module: str | None = None
    token_label: str = "koshin"  # noqa: S105 - a label, not a secret
    token_pin: SecretStr | None = None
    token_pin_file: Path | None = None
    database_url: str | None = None
    ca_key_algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048
    key_label_prefix: str = "koshin-"
    public_base_url: str = "http://127.0.0.1:8000"
    profiles_dir: Path | None = None
    lint: bool = True
    policy: str = "current-2022"
    proofing_ttl_minutes: int = Field(default=30, gt=0, le=24 * 60)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    behind_tls: bool = False  # requests reach koshin through TLS: serve --tls sets it, or your own terminator
    audit_checkpoint_seconds: float = Field(default=300, ge=0)  # 0: no timer (start/stop still)
    audit_checkpoint_records: int = Field(default=1000, gt=0)
    audit_sequencer_seconds: float = Field(default=0.1, gt=0, le=10)  # the leader integrates this often
    audit_sequencer_batch: int = Field(default=1000, gt=0, le=100_000)  # records per integration transaction
    audit_lead_poll_seconds: float = Field(default=1.0, gt=0, le=60)  # followers try to take the lead this often
    crl_coalesce_seconds: float = Field(default=0.5, ge=0, le=60)  # a revocation burst is gathered this long
    crl_check_seconds: float = Field(default=30, gt=0, le=3600)  # CRLs behind or half expired, pending intents
    reconcile_grace_seconds: float = Field(default=300, ge=0)  # a pending intent older than this is reconciled
    device_maker_roots: Path | None = None  # PEM bundle of trusted device-maker attestation roots (and home's)
    auth_event_limit: int = Field(default=5, ge=1)  # wrong one-time secrets that burn a proofing event
    auth_source_limit: int = Field(default=20, ge=1)  # failed authentications that lock a source address out
    auth_window_seconds: int = Field(default=900, ge=1)  # ... within this window, and for its rest

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def embedded(self) -> bool:
        """The embedded default: koshin runs its own SoftHSM token under ``home``."""
        return self.pkcs11_module is None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'koshin.db'}"
