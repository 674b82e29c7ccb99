"""The module-scoped live server of test_live.py: a runtime whose URLs point at it, actors, a registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import SecretStr

from devices.capabilities import load_token_profile
from devices.device import Device
from devices.station import Station, call
from hsm import KeyAlgorithm, TokenSession
from service.api.app import create_app
from service.provisioning import provision
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from tests.conftest import TRANSPORT_PINS, SoftHsm
from tests.support.api_world import MIYAZAKI, REGISTRY, load_pem
from tests.support.helpers import write_pem
from tests.support.live import LiveClient, LiveServer, listening_socket
from tests.support.pki_world import token_csr

CAS = ("signature", "user-authentication")


@dataclass
class Live:
    base_url: str
    runtime: Runtime
    client: LiveClient
    csr_pem: str
    root: x509.Certificate
    root_pem: Path  # the trust anchor only
    issuing: dict[str, x509.Certificate]
    issuing_pem: dict[str, Path]
    bundle_pem: Path  # root and both issuing CAs

    def issue(self, ca: str) -> tuple[str, x509.Certificate]:
        out = self.client.issue(self.csr_pem, ca, MIYAZAKI)
        return str(out["serial"]), load_pem(str(out["certificate_pem"]))


@pytest.fixture(scope="session")
def live(softhsm: SoftHsm, token: TokenSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live")
    sock = listening_socket()
    port = sock.getsockname()[1]
    try:
        settings = Settings(
            home=home,
            pkcs11_module=softhsm.module,
            token_label=softhsm.token_label,
            token_pin=SecretStr(softhsm.pin),
            database_url=f"sqlite:///{home / 'koshin.db'}",
            ca_key_algorithm=KeyAlgorithm.P256,
            key_label_prefix="live-",
            public_base_url=f"http://127.0.0.1:{port}",
            behind_tls=True,  # EST over plain HTTP here; tests/service/tls/test_tls.py runs it over real TLS
        )
        runtime = open_runtime(settings)
        provision(runtime)
    except BaseException:
        sock.close()
        raise
    server = LiveServer(create_app(runtime.settings, runtime=runtime), sock)
    assert server.base_url == settings.public_base_url
    server.start()
    client = LiveClient(server.base_url)
    try:
        client.tokens["ca_operator"] = runtime.repo.add_actor("live-operator", "ca_operator", None)[1]
        imported = client.post("/v1/registry/import", "ca_operator", REGISTRY)
        assert imported.status_code == 200, imported.text
        client.tokens["municipal_staff"] = runtime.repo.add_actor("live-staff", "municipal_staff", MIYAZAKI)[1]

        chain = client.http.get("/v1/ca/chain")
        assert chain.status_code == 200, chain.text
        certs = x509.load_pem_x509_certificates(chain.content)
        root = certs[0]
        assert root.subject == root.issuer
        issuing: dict[str, x509.Certificate] = {}
        for name in CAS:
            fetched = client.http.get(f"/ca/{name}.cer")
            assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/pkix-cert"
            issuing[name] = x509.load_der_x509_certificate(fetched.content)
            assert issuing[name] in certs[1:]
        directory = tmp_path_factory.mktemp("live-pem")
        yield Live(
            base_url=server.base_url,
            runtime=runtime,
            client=client,
            csr_pem=token_csr(token, "live-holder-p256", KeyAlgorithm.P256).public_bytes(Encoding.PEM).decode(),
            root=root,
            root_pem=write_pem(directory / "root.pem", root),
            issuing=issuing,
            issuing_pem={name: write_pem(directory / f"{name}.pem", cert) for name, cert in issuing.items()},
            bundle_pem=write_pem(directory / "bundle.pem", root, *issuing.values()),
        )
    finally:
        client.close()
        server.stop()
        runtime.close()


# -- helpers -------------------------------------------------------------------------------------------------


# -- the counter station on the live server, shared by the card and phone flow tests -------------------------
@pytest.fixture(scope="session")
def station(live: Live, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Station:
    headers = {"Authorization": f"Bearer {live.client.tokens['municipal_staff']}"}
    http = httpx.Client(base_url=live.base_url, timeout=30.0, headers=headers)
    device = Device(softhsm.module, "t-station", load_token_profile("station"), tmp_path_factory.mktemp("station"))
    return Station(http, device, TRANSPORT_PINS["station"]["operator"], softhsm.device_so_pin)


def card_device(softhsm: SoftHsm, name: str, state: Path) -> Device:
    return Device(softhsm.module, name, load_token_profile("card"), state)


def new_resident(station: Station) -> str:
    number = f"R-{uuid.uuid4().hex[:10]}"
    call(station.http, "POST", "/v1/residents", {"resident_number": number, "name": "宮崎 花子",
         "address": "宮崎県宮崎市橘通西一丁目1番1号", "municipality": MIYAZAKI, "date_of_birth": "1988-04-12",
         "sex": "female"})  # fmt: skip
    return number
