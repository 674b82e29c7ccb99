"""Where the token comes from: the embedded SoftHSM default under KOSHIN_HOME, or a configured module.

The embedded default writes its own softhsm2.conf and token directory and keeps random SO and user PINs in
files of mode 0600 under ``KOSHIN_HOME/secrets``. That is a development default: in production the PIN comes
from KOSHIN_TOKEN_PIN_FILE on a secrets mount (or KOSHIN_TOKEN_PIN from a secret store) and the module is the
HSM vendor's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hsm import admin
from service.errors import ConfigurationError
from service.settings import Settings


@dataclass(frozen=True)
class TokenConfig:
    module_path: str
    token_label: str
    pin: str


def _read_pin_file(path: Path) -> str:
    try:
        pin = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read PIN file {path}: {exc.strerror}") from exc
    if not pin:
        raise ConfigurationError(f"PIN file {path} is empty")
    return pin


def _configured_pin(settings: Settings) -> str | None:
    if settings.token_pin is not None:
        return settings.token_pin.get_secret_value()
    if settings.token_pin_file is not None:
        return _read_pin_file(settings.token_pin_file)
    return None


def embedded_paths(home: Path) -> tuple[Path, Path, Path]:
    """softhsm2.conf, user PIN file, SO PIN file of the embedded default."""
    return home / "softhsm2.conf", home / "secrets" / "user.pin", home / "secrets" / "so.pin"


def token_config(settings: Settings, *, create: bool) -> TokenConfig:
    """Resolve module, token and PIN; for the embedded default, create the token when ``create`` is set.

    Must run before the process loads the SoftHSM module: SoftHSM reads SOFTHSM2_CONF when initialised.
    """
    if not settings.embedded:
        pin = _configured_pin(settings)
        if pin is None:
            raise ConfigurationError("KOSHIN_PKCS11_MODULE is set: give KOSHIN_TOKEN_PIN or KOSHIN_TOKEN_PIN_FILE")
        return TokenConfig(str(settings.pkcs11_module), settings.token_label, pin)

    module = admin.find_softhsm()
    if module is None:
        raise ConfigurationError("libsofthsm2.so not found: install the Debian package softhsm2 (make run does)")
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf, user_pin_file, so_pin_file = embedded_paths(settings.home)
    os.environ["SOFTHSM2_CONF"] = str(admin.write_softhsm_conf(settings.home))
    if not admin.softhsm_token_exists(conf, settings.token_label):
        if not create:
            raise ConfigurationError(f"no token {settings.token_label!r} under {settings.home}: run `koshin init`")
        user_pin = _configured_pin(settings) or admin.random_pin()
        so_pin = admin.random_pin()
        admin.write_private_file(so_pin_file, so_pin + "\n")
        admin.write_private_file(user_pin_file, user_pin + "\n")
        admin.init_softhsm_token(conf, settings.token_label, so_pin, user_pin)
    pin = _configured_pin(settings) or _read_pin_file(user_pin_file)
    return TokenConfig(module, settings.token_label, pin)
