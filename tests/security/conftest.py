"""Fixtures of the key-handling security suite: the target token and a logged-in session on it.

Without KOSHIN_SECURITY_* variables the target is the session SoftHSM token (tests/conftest.py), populated
once per session with a CA hierarchy per algorithm. With them, it is the named module/token/PIN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hsm import TokenSession
from tests.conftest import SoftHsm
from tests.security.target import Target, external_target, populate
from tests.support.api_world import Api, serve_api


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    external = external_target()
    if external is not None:
        return external
    softhsm: SoftHsm = request.getfixturevalue("softhsm")
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)}
    return Target(softhsm.module, softhsm.token_label, softhsm.pin, external=False, child_env=env)


@pytest.fixture(scope="session")
def target_session(request: pytest.FixtureRequest, target: Target) -> Iterator[TokenSession]:
    if not target.external:
        session: TokenSession = request.getfixturevalue("token")
        populate(session)
        yield session
        return
    with TokenSession(target.module, target.token_label, target.pin) as external:
        yield external


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def hostile_api(request: pytest.FixtureRequest, token: TokenSession, tmp_path_factory: pytest.TempPathFactory) -> Api:
    """The REST service in-process with a runtime of its own, on both databases, for the hostile-input suite."""
    return serve_api(request, token, tmp_path_factory, "hostile")
