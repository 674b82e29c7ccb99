"""Shared fixtures: a session-scoped SoftHSM token in a temp directory with random PINs.

SoftHSM reads SOFTHSM2_CONF when the module is initialised, and a process initialises it once, so the token
is created (with softhsm2-util) before anything in this process loads the module. Under CI (CI set) a missing
SoftHSM is a test failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hsm import TokenSession, admin

TEST_TOKEN = "koshin-test"


@dataclass(frozen=True)
class SoftHsm:
    module: str
    conf: Path
    token_label: str
    pin: str
    so_pin: str


def require_softhsm() -> str:
    module = admin.find_softhsm()
    if module is None or shutil.which("softhsm2-util") is None:
        message = "SoftHSM2 is not installed (Debian package softhsm2; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return module


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    module = require_softhsm()
    home = tmp_path_factory.mktemp("softhsm")
    conf = admin.write_softhsm_conf(home)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin, so_pin = admin.random_pin(), admin.random_pin()
    admin.init_softhsm_token(conf, TEST_TOKEN, so_pin, pin)
    return SoftHsm(module=module, conf=conf, token_label=TEST_TOKEN, pin=pin, so_pin=so_pin)


@pytest.fixture(scope="session")
def token(softhsm: SoftHsm) -> Iterator[TokenSession]:
    session = TokenSession(softhsm.module, softhsm.token_label, softhsm.pin)
    yield session
    session.close()
