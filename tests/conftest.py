"""Shared fixtures: a session-scoped SoftHSM token in a temp directory with random PINs.

SoftHSM reads SOFTHSM2_CONF when the module is initialised, and a process initialises it once, so the token
is created (with softhsm2-util) before anything in this process loads the module. Under CI (CI set) a missing
SoftHSM is a test failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.pgserver import PgServer, find_bindir
from devices.attestation import DeviceMaker
from hsm import TokenSession, admin

# Fixtures shared by every tier: the live API world (``api``) and the CA hierarchy on the token (``pki``).
pytest_plugins = ["tests.support.memo", "tests.support.pki_world", "tests.support.api_world"]

TEST_TOKEN = "koshin-test"


# Blank device stock made before the module is loaded (SoftHSM sees only tokens present at C_Initialize).
TRANSPORT_PINS = {
    "station": {"operator": "station-operator-pin"},
    "card": {"signature": "TRANSPORT01", "user-authentication": "0000"},
    "phone": {"signature": "TRANSPORT01", "user-authentication": "0000"},
    "next-gen-card": {"signature": "TRANSPORT01", "user-authentication": "0000"},
    "maker": {"attestation": "MAKER00001"},
}
DEVICE_STOCK = {
    "t-station": "station",
    **{f"t-card-{i}": "card" for i in range(10)},
    "t-phone-0": "phone",
    "t-phone-1": "phone",
    "t-nextgen-0": "next-gen-card",
    "t-card-pdf": "card",  # tests/service/pdf/test_pdf_live.py
    "t-phone-pdf": "phone",
    "t-maker": "maker",  # the device maker whose attestation root the test services trust
}
ATTESTING_KINDS = ("phone", "next-gen-card")


@dataclass(frozen=True)
class SoftHsm:
    module: str
    conf: Path
    token_label: str
    pin: str
    so_pin: str
    devices: dict[str, str]  # device name -> kind (tokens "<name>-<credential>")
    device_so_pin: str


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
    device_so_pin = admin.random_pin()
    for name, kind in DEVICE_STOCK.items():
        admin.make_device_tokens(conf, name, TRANSPORT_PINS[kind], device_so_pin)
    os.environ["KOSHIN_DEVICE_MAKER_ROOTS"] = str(home / "device-makers.pem")  # written by device_maker
    return SoftHsm(module, conf, TEST_TOKEN, pin, so_pin, dict(DEVICE_STOCK), device_so_pin)


@dataclass(frozen=True)
class Makers:
    """The test device maker and the attestation certificate of every credential of every phone-like device."""

    maker: DeviceMaker
    certificates: dict[str, dict[str, x509.Certificate]]

    def of(self, device: str) -> dict[str, x509.Certificate]:
        return self.certificates[device]


@pytest.fixture(scope="session")
def device_maker(softhsm: SoftHsm) -> Iterator[Makers]:
    """Manufacture: the maker's root on its own token (trusted by every test service through
    KOSHIN_DEVICE_MAKER_ROOTS) and an attestation key in each credential of each phone and next-gen card."""
    with TokenSession(softhsm.module, "t-maker-attestation", TRANSPORT_PINS["maker"]["attestation"]) as token:
        maker = DeviceMaker.create(token, "Test Device Maker")
        Path(os.environ["KOSHIN_DEVICE_MAKER_ROOTS"]).write_bytes(maker.certificate.public_bytes(Encoding.PEM))
        certificates: dict[str, dict[str, x509.Certificate]] = {}
        for name, kind in DEVICE_STOCK.items():
            if kind not in ATTESTING_KINDS:
                continue
            for credential, pin in TRANSPORT_PINS[kind].items():
                with TokenSession(softhsm.module, f"{name}-{credential}", pin) as device:
                    certificates.setdefault(name, {})[credential] = maker.certify(device, f"{name}-{credential}")
        yield Makers(maker, certificates)


@pytest.fixture(scope="session")
def token(softhsm: SoftHsm) -> Iterator[TokenSession]:
    session = TokenSession(softhsm.module, softhsm.token_label, softhsm.pin)
    yield session
    session.close()


# -- PostgreSQL: one throwaway server per session (bench/pgserver.py), a fresh database per test -----------------


def require_postgres() -> None:
    if find_bindir() is None:
        message = "PostgreSQL is not installed (Debian package postgresql; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    require_postgres()
    with PgServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(pg_server: PgServer) -> str:
    return pg_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test, on each backend. PostgreSQL starts only when a test asks for it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'koshin.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex}"
    yield server.create_database(name)
    server.drop_database(name)


# The modules that take longest (servers, many `koshin` processes), longest first. pytest-xdist hands out
# whole modules in collection order, so these go out first and the two workers finish together instead of one
# waiting for the other's last long module (longest-processing-time-first scheduling).
HEAVY_FIRST = ("bench/test_bench.py", "service/cli/test_serve.py", "service/cluster/test_two_nodes.py",
               "service/flows/test_write_path.py",
               "service/cli/test_cli.py", "security/test_no_key_material.py", "service/audit/test_anchor.py",
               "service/protocols/test_cmp_responder.py", "service/observability/test_served.py",
               "service/cli/test_demo.py", "security/test_login.py", "security/test_key_attributes.py",
               "service/tls/test_tls.py", "service/audit/test_audit_api.py")  # fmt: skip


def _schedule_rank(item: pytest.Item) -> int:
    path = item.path.as_posix()
    return next((i for i, module in enumerate(HEAVY_FIRST) if path.endswith(f"tests/{module}")), len(HEAVY_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heavy modules first (HEAVY_FIRST), then the ``hsm`` marker on every test that needs a token: each whose
    fixtures reach ``softhsm`` (a module that drives the embedded SoftHSM through the command line marks itself
    with ``pytestmark``). ``pytest -m "not hsm"`` is then the token-free tier."""
    items.sort(key=_schedule_rank)  # stable: the order within a module, and among the rest, is kept
    for item in items:
        needs_token = bool({"softhsm", "target", "target_session"} & set(getattr(item, "fixturenames", ())))
        if needs_token:
            item.add_marker(pytest.mark.hsm)
