"""The bench's own KOSHIN_HOME: one SoftHSM configuration holding a CA token per key algorithm and a station
token, every token created before any process loads the module, a SQLite database per algorithm.

The bench never touches the operator's KOSHIN_HOME: by default it works in a fresh temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hsm import KeyAlgorithm, admin
from service.bootstrap import token_config
from service.settings import Settings

STATION_TOKEN = "bench-station"  # noqa: S105 - a token label, not a secret
ALGORITHMS = {"rsa2048": KeyAlgorithm.RSA2048, "p256": KeyAlgorithm.P256}


@dataclass(frozen=True)
class BenchHome:
    root: Path

    @property
    def pin_file(self) -> Path:
        return self.root / "secrets" / "user.pin"

    @property
    def conf(self) -> Path:
        return self.root / "softhsm2.conf"

    @property
    def pin(self) -> str:
        return self.pin_file.read_text(encoding="utf-8").strip()

    def sqlite_url(self, algorithm: str, tag: str = "") -> str:
        return f"sqlite:///{self.root / f'{algorithm}{tag}.db'}"

    def settings(
        self, algorithm: str, *, lint: bool = True, database_url: str | None = None, prefix: str = "", port: int = 8000
    ) -> Settings:
        """Settings of the CA hierarchy for ``algorithm``; ``prefix`` tells apart hierarchies on one token."""
        return Settings(
            home=self.root,
            pkcs11_module=None,
            token_label=f"bench-{algorithm}",
            token_pin=None,
            token_pin_file=self.pin_file,
            database_url=database_url or self.sqlite_url(algorithm),
            ca_key_algorithm=ALGORITHMS[algorithm],
            key_label_prefix=f"bench-{algorithm}-{prefix}",
            public_base_url=f"http://127.0.0.1:{port}",
            profiles_dir=None,
            lint=lint,
        )

    def env(self, settings: Settings) -> dict[str, str]:
        """The environment of a ``koshin`` subprocess running on ``settings`` (no inherited KOSHIN_*)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOSHIN_")}
        env.update(
            KOSHIN_HOME=str(self.root),
            KOSHIN_TOKEN_LABEL=settings.token_label,
            KOSHIN_TOKEN_PIN_FILE=str(self.pin_file),
            KOSHIN_DATABASE_URL=settings.resolved_database_url,
            KOSHIN_CA_KEY_ALGORITHM=settings.ca_key_algorithm.value,
            KOSHIN_KEY_LABEL_PREFIX=settings.key_label_prefix,
            KOSHIN_PUBLIC_BASE_URL=settings.public_base_url,
            KOSHIN_LINT="true" if settings.lint else "false",
            SOFTHSM2_CONF=str(self.conf),
        )
        return env


def prepare(root: Path) -> BenchHome:
    """Create every token (softhsm2-util only; this process never loads the module): SoftHSM sees only the
    tokens present when a process initialises it."""
    home = BenchHome(root.resolve())
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not home.pin_file.exists():
        admin.write_private_file(home.pin_file, admin.random_pin() + "\n")
    for algorithm in ALGORITHMS:
        token_config(home.settings(algorithm), create=True)  # sets SOFTHSM2_CONF for the children too
    if not admin.softhsm_token_exists(home.conf, STATION_TOKEN):
        admin.init_softhsm_token(home.conf, STATION_TOKEN, admin.random_pin(), home.pin)
    return home
