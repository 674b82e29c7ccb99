"""Devices made of tokens: a station, a card, a phone. Each credential of a device is its own PKCS#11 token
(a JPKI card has separate signature and user-authentication applications with separate PINs), opened through
a failure counter that koshin keeps because SoftHSM never locks a PIN.

The counter persists in a file beside the tokens (a real chip keeps it on the chip): a wrong PIN counts, a
successful login resets it, and at ``max_failures`` the credential is locked without asking the token again.
A PIN of the wrong form is refused before the token is asked and does not count.

Tokens for devices are made ahead (blank stock, like card stock a municipality receives) because SoftHSM
only sees tokens that exist when a process initialises the module; ``admin.make_device_tokens`` makes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from devices.capabilities import CredentialSpec, TokenProfile
from hsm.errors import PinFormatInvalid, PinIncorrect, PinLocked, translated
from hsm.session import TokenSession, load_module


class Device:
    def __init__(self, module_path: str, name: str, profile: TokenProfile, state_dir: Path) -> None:
        self.module_path, self.name, self.profile, self.state_dir = module_path, name, profile, state_dir

    def token_label(self, credential: str) -> str:
        self._spec(credential)
        return f"{self.name}-{credential}"

    def failures(self, credential: str) -> int:
        path = self._counter(credential)
        if not path.exists():
            return 0
        return int(json.loads(path.read_text())["failures"])

    def open(self, credential: str, pin: str) -> TokenSession:
        """Log in to one credential's token, counting failures; locked credentials are not tried."""
        spec = self._spec(credential)
        failures = self.failures(credential)
        if failures >= spec.max_failures:
            raise PinLocked(f"{self.name} {credential}: locked after {failures} wrong PINs")
        if not spec.accepts(pin):
            raise PinFormatInvalid(f"{self.name} {credential}: the PIN must be {spec.description}")
        try:
            session = TokenSession(
                self.module_path,
                self.token_label(credential),
                pin,
                can_generate_keys=self.profile.can_generate_keys,
                accepts_injected_keys=self.profile.accepts_injected_keys,
            )
        except PinIncorrect:
            failures += 1
            self._write(credential, failures)
            if failures >= spec.max_failures:
                raise PinLocked(f"{self.name} {credential}: locked after {failures} wrong PINs") from None
            raise PinIncorrect(
                f"{self.name} {credential}: wrong PIN, {spec.max_failures - failures} tries left"
            ) from None
        self._write(credential, 0)
        return session

    def set_pin(self, credential: str, old_pin: str, new_pin: str) -> None:
        """The holder chooses a PIN (replacing the blank card's transport PIN)."""
        spec = self._spec(credential)
        if not spec.accepts(new_pin):
            raise PinFormatInvalid(f"{self.name} {credential}: the new PIN must be {spec.description}")
        context = f"set PIN of {self.token_label(credential)}"
        with self.open(credential, old_pin) as token, token.locked() as session, translated(context):
            session.set_pin(old_pin, new_pin)

    def reset_pin(self, credential: str, so_pin: str, new_pin: str) -> None:
        """The issuer resets a credential's PIN (C_InitPIN as SO) and clears its failure counter. The caller
        must hold an authorisation for it (a proofing event the policy allowed)."""
        spec = self._spec(credential)
        if not spec.accepts(new_pin):
            raise PinFormatInvalid(f"{self.name} {credential}: the new PIN must be {spec.description}")
        lib, lock = load_module(self.module_path)
        label = self.token_label(credential)
        with lock, translated(f"reset PIN of {label}"):
            token = lib.get_token(token_label=label)
            with token.open(rw=True, so_pin=so_pin) as session:
                session.init_pin(new_pin)
        self._write(credential, 0)

    def _spec(self, credential: str) -> CredentialSpec:
        try:
            return self.profile.credentials[credential]
        except KeyError:
            known = ", ".join(self.profile.credentials)
            raise PinFormatInvalid(f"{self.profile.kind} has no credential {credential!r} ({known})") from None

    def _counter(self, credential: str) -> Path:
        return self.state_dir / f"{self.name}-{credential}.failures.json"

    def _write(self, credential: str, failures: int) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._counter(credential)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"failures": failures}))
        os.replace(tmp, path)
