"""Kiosk PIN reset over HTTP against the live server: face match + the other credential's PIN (P8/P9);
both forgotten -> refused with a pointer to the counter (P10)."""

from __future__ import annotations

import httpx
import pytest

from devices.errors import ServiceRefused
from devices.kiosk import Kiosk
from devices.station import Station, call
from hsm import PinLocked
from hsm.errors import PinIncorrect
from tests.conftest import TRANSPORT_PINS, SoftHsm
from tests.support.live_fixture import Live, card_device, new_resident

PINS = {"signature": "KIOSKUSER01", "user-authentication": "1357"}


def test_kiosk_resets_a_locked_signature_password_with_the_auth_pin(
    live: Live, station: Station, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state = tmp_path_factory.mktemp("kiosk-state")
    resident = new_resident(station)
    card = card_device(softhsm, "t-card-7", state)
    station.renew_card(resident_number=resident, card=card, card_number="CKI00000007",
                       transport_pins=TRANSPORT_PINS["card"], holder_pins=PINS, replaces_card=None)  # fmt: skip
    for _ in range(4):
        with pytest.raises(PinIncorrect):
            card.open("signature", "FORGOTTEN1")
    with pytest.raises(PinLocked):
        card.open("signature", "FORGOTTEN1")

    token = live.runtime.repo.add_actor("store-kiosk-1", "kiosk", None)[1]
    kiosk = Kiosk(httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}),
                  softhsm.device_so_pin)  # fmt: skip
    with pytest.raises(ServiceRefused) as refused:  # no face match: refused, nothing reset
        kiosk.reset_pin(resident_number=resident, card=card, credential="signature",
                        other_pin=PINS["user-authentication"], face_matched=False, new_pin="NEWPASS2027")  # fmt: skip
    assert refused.value.status == 403
    with pytest.raises(ServiceRefused) as both:  # both forgotten: the counter only
        kiosk.reset_pin(resident_number=resident, card=card, credential="signature", other_pin=None,
                        face_matched=True, new_pin="NEWPASS2027")  # fmt: skip
    assert both.value.problem["rule_id"].startswith("P10")
    assert "counter" in both.value.problem["reason"]

    done = kiosk.reset_pin(resident_number=resident, card=card, credential="signature",
                           other_pin=PINS["user-authentication"], face_matched=True, new_pin="NEWPASS2027")  # fmt: skip
    assert done.proofing["decision"]["rule_id"] == "P8" and done.authorisation["authorised"]
    assert card.failures("signature") == 0
    card.open("signature", "NEWPASS2027").close()

    auth = kiosk.reset_pin(resident_number=resident, card=card, credential="user-authentication",
                           other_pin="NEWPASS2027", face_matched=True, new_pin="2468")  # fmt: skip
    assert auth.proofing["decision"]["rule_id"] == "P9"
    card.open("user-authentication", "2468").close()
    with pytest.raises(ServiceRefused) as reused:  # an authorisation is single-use
        call(kiosk.http, "POST", "/v1/pin-resets", {"proofing_event_id": auth.proofing["id"],
             "credential": "user-authentication"})  # fmt: skip
    assert reused.value.status == 409
