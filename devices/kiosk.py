"""The convenience-store kiosk with the phone-app pre-check (domain brief §2.5): a PIN is reset when the
holder's face matches the card's chip photo AND the holder still knows the OTHER credential's PIN.

The kiosk proves that knowledge by logging in to the other credential on the card (a wrong PIN counts toward
that credential's lockout), records a proofing event, and, when the policy allows (P8 for the signature
password, P9 for the auth PIN), gets one reset authorised and resets the PIN with the issuer's SO credential.
With both PINs forgotten there is nothing to prove: the policy sends the holder to the counter (P10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from devices.device import Device
from devices.station import call

OTHER = {"signature": "user-authentication", "user-authentication": "signature"}
OPERATION = {"signature": "sign_password_reset", "user-authentication": "auth_pin_reset"}
PIN_EVIDENCE = {"signature": "sign_password", "user-authentication": "auth_pin"}


@dataclass(frozen=True)
class PinReset:
    credential: str
    proofing: dict[str, Any]
    authorisation: dict[str, Any]


class Kiosk:
    def __init__(self, http: httpx.Client, issuer_so_pin: str) -> None:
        self.http, self.issuer_so_pin = http, issuer_so_pin

    def reset_pin(
        self,
        *,
        resident_number: str,
        card: Device,
        credential: str,
        other_pin: str | None,
        face_matched: bool,
        new_pin: str,
    ) -> PinReset:
        """Reset ``credential``'s PIN. ``other_pin`` is the PIN of the other credential, or None if forgotten."""
        evidence = ["live_face_capture", "face_match_chip_photo"] if face_matched else []
        if other_pin is not None:
            card.open(OTHER[credential], other_pin).close()  # proves the holder knows it (failures count)
            evidence.append(PIN_EVIDENCE[OTHER[credential]])
        proofing = call(self.http, "POST", "/v1/proofing-events", {
            "resident_number": resident_number, "operation": OPERATION[credential],
            "channel": "kiosk_face_match", "evidence": evidence})  # fmt: skip
        authorisation = call(self.http, "POST", "/v1/pin-resets",
                             {"proofing_event_id": proofing["id"], "credential": credential})  # fmt: skip
        card.reset_pin(credential, self.issuer_so_pin, new_pin)
        return PinReset(credential, proofing, authorisation)
