"""The refused cases under every regime, against a live server per regime: contractor proofing, online card
renewal (face match + PIN), and a phone-style renewal of a card certificate. Under proposal-15 and -280 the
remote card renewal is allowed at IAL2: a central issuing station makes and injects the keys, the
certificates carry the IAL2 policy OID and the card is delivered by restricted mail."""

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
from devices.errors import ServiceRefused
from devices.station import Station, call
from hsm import KeyAlgorithm, TokenSession
from service.api.app import create_app
from service.provisioning import provision
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from tests.conftest import TRANSPORT_PINS, SoftHsm
from tests.support.api_world import MIYAZAKI, REGISTRY
from tests.support.live import LiveServer, listening_socket
from tests.support.live_fixture import card_device
from tests.support.pki_world import token_csr

REGIMES = ["current-2022", "proposal-15", "proposal-90", "proposal-246", "proposal-280"]
ONLINE_RENEWAL = {"operation": "card_renew", "channel": "online_face_match",
                  "evidence": ["auth_pin", "face_match_chip_photo", "live_face_capture"]}  # fmt: skip
COUNTER = {"operation": "cert_issue", "channel": "counter_in_person",
           "evidence": ["photo_id_document", "resident_register_match"]}  # fmt: skip
CONTRACTOR = {"operation": "card_renew", "channel": "outreach_in_person",
              "evidence": ["photo_id_document", "resident_register_match"]}  # fmt: skip
PHONE_STYLE = {"operation": "cert_renew", "channel": "online_sign_cert",
               "evidence": ["card_sign_certificate", "device_generated_key"]}  # fmt: skip
# regime -> case -> expected rule id (allowed iff the rule is the proposal's own)
EXPECTED = {
    "current-2022": {"online": "P2", "contractor": "P3", "phone-style": "P12"},
    "proposal-15": {"online": "P15-RENEW", "contractor": "P3", "phone-style": "P12"},
    "proposal-90": {"online": "P2", "contractor": "P90-CONTRACTOR", "phone-style": "P12"},
    "proposal-246": {"online": "P2", "contractor": "P3", "phone-style": "P246-CERT-RENEW"},
    "proposal-280": {"online": "P280-RENEW", "contractor": "P3", "phone-style": "P12"},
}
CENTRAL_CARDS = {"proposal-15": "t-card-8", "proposal-280": "t-card-9"}


@dataclass
class RegimeServer:
    regime: str
    base_url: str
    tokens: dict[str, str]
    runtime: Runtime

    def client(self, role: str, resident: str | None = None) -> httpx.Client:
        """As ``role``; a holder app is bound to ``resident`` (it acts for that holder only)."""
        token = self.tokens[role]
        if role == "holder_app" and resident is not None:
            token = self.runtime.repo.add_actor(f"app-{resident}", role, None, resident)[1]
        return httpx.Client(base_url=self.base_url, timeout=30.0, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module", params=REGIMES)
def server(
    request: pytest.FixtureRequest, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegimeServer]:
    regime: str = request.param
    home = tmp_path_factory.mktemp(f"regime-{regime}")
    sock = listening_socket()
    settings = Settings(home=home, pkcs11_module=softhsm.module, token_label=softhsm.token_label,
                        token_pin=SecretStr(softhsm.pin), database_url=f"sqlite:///{home / 'koshin.db'}",
                        ca_key_algorithm=KeyAlgorithm.P256, key_label_prefix=f"reg-{regime}-", policy=regime,
                        public_base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")  # fmt: skip
    runtime = open_runtime(settings)
    provision(runtime)
    live = LiveServer(create_app(settings, runtime=runtime), sock)
    live.start()
    tokens = {"ca_operator": runtime.repo.add_actor("ca_operator-1", "ca_operator", None)[1]}
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {tokens['ca_operator']}"}) as http:
        call(http, "POST", "/v1/registry/import", REGISTRY)
    for role in ("municipal_staff", "contractor", "holder_app"):
        tokens[role] = runtime.repo.add_actor(f"{role}-1", role, MIYAZAKI)[1]
    try:
        yield RegimeServer(regime, live.base_url, tokens, runtime)
    finally:
        live.stop()
        runtime.close()


def _resident(server: RegimeServer) -> tuple[str, str]:
    number, card = f"R-{uuid.uuid4().hex[:10]}", f"C{uuid.uuid4().hex[:10].upper()}"
    with server.client("municipal_staff") as http:
        call(http, "POST", "/v1/residents", {"resident_number": number, "name": "宮崎 二郎",
             "address": "宮崎県宮崎市橘通東一丁目1番1号", "municipality": MIYAZAKI, "date_of_birth": "1979-09-09",
             "sex": "male", "cards": [{"number": card, "issued_on": "2019-03-01"}]})  # fmt: skip
    return number, card


CASES = [
    ("online", "holder_app", ONLINE_RENEWAL),
    ("contractor", "contractor", CONTRACTOR),
    ("phone-style", "holder_app", PHONE_STYLE),
]


@pytest.mark.parametrize(("case", "role", "body"), CASES)
def test_remote_and_delegated_requests_per_regime(
    server: RegimeServer, case: str, role: str, body: dict[str, object], token: TokenSession
) -> None:
    resident, card = _resident(server)
    if case == "phone-style":  # renewing with the card's signature certificate needs a live one
        csr = token_csr(token, "regime-holder", KeyAlgorithm.P256).public_bytes(Encoding.PEM).decode()
        with server.client("municipal_staff") as http:
            counter = call(http, "POST", "/v1/proofing-events", {"resident_number": resident, **COUNTER})
            call(http, "POST", "/v1/certificates", {"csr_pem": csr, "resident_number": resident, "card_number": card,
                 "certificate_type": "signature", "proofing_event_id": counter["id"]})  # fmt: skip
    expected = EXPECTED[server.regime][case]
    allowed = expected in {"P15-RENEW", "P280-RENEW", "P90-CONTRACTOR", "P246-CERT-RENEW"}
    with server.client(role, resident) as http:
        if case == "phone-style":  # verified evidence is never asserted in a proofing event: ask the policy
            asserted = http.post("/v1/proofing-events", json={"resident_number": resident, **body})
            assert asserted.status_code == 422 and "cannot be asserted" in asserted.text, asserted.text
            decision = call(http, "POST", "/v1/policy/evaluate", {**body, "role": role, "actor_municipality": None,
                            "holder_municipality": MIYAZAKI})  # fmt: skip
            assert (decision["allowed"], decision["rule_id"]) == (allowed, expected), decision
        elif allowed:
            event = call(http, "POST", "/v1/proofing-events", {"resident_number": resident, **body})
            assert event["decision"]["rule_id"] == expected
        else:
            with pytest.raises(ServiceRefused) as refused:
                call(http, "POST", "/v1/proofing-events", {"resident_number": resident, **body})
            assert refused.value.status == 403
            assert refused.value.problem["rule_id"] == expected and refused.value.problem["reason"]


def test_allowed_remote_card_renewal_goes_through_a_central_station_at_ial2(
    server: RegimeServer, softhsm: SoftHsm, tmp_path: Path
) -> None:
    resident, old_card = _resident(server)
    if server.regime not in CENTRAL_CARDS:  # refused: nothing recorded, so no central station has an event
        with server.client("holder_app", resident) as http:
            refused = http.post("/v1/proofing-events", json={"resident_number": resident, **ONLINE_RENEWAL})
        assert refused.status_code == 403 and refused.json()["rule_id"] == "P2", refused.text
        return
    with server.client("holder_app", resident) as http:
        event = call(http, "POST", "/v1/proofing-events", {"resident_number": resident, **ONLINE_RENEWAL})
    assert event["decision"]["assurance_level"] == "IAL2"
    assert "deliver_by_restricted_mail" in event["decision"]["conditions"]
    device = Device(softhsm.module, "t-station", load_token_profile("station"), tmp_path)
    central = Station(server.client("ca_operator"), device, TRANSPORT_PINS["station"]["operator"],
                      softhsm.device_so_pin)  # fmt: skip
    card = card_device(softhsm, CENTRAL_CARDS[server.regime], tmp_path)
    renewal = central.renew_card(
        resident_number=resident,
        card=card,
        card_number=f"M{uuid.uuid4().hex[:9].upper()}",
        transport_pins=TRANSPORT_PINS["card"],
        replaces_card=old_card,
        proofing=event,
        holder_pins={"signature": "MAILED2026", "user-authentication": "2026"},
    )
    for out in renewal.certificates.values():
        assert out["assurance_level"] == "IAL2" and out["key_origin"] == "station"
        cert = x509.load_pem_x509_certificate(out["certificate_pem"].encode())
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        assert [p.policy_identifier.dotted_string for p in policies] == ["1.3.6.1.5.5.7.13.2"]
    with server.client("municipal_staff") as http:
        cards = {c["number"]: c for c in call(http, "GET", f"/v1/residents/{resident}")["cards"]}
    assert cards[renewal.card_number]["delivery"] == "restricted_mail"
    assert cards[old_card]["status"] == "superseded"
