"""On-device key generation is verified, not asserted: a phone enrollment shows device_generated_key to the policy
only with a valid key attestation for every key, under the request's nonce, from a trusted device maker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ca.attestation import ORIGIN_IMPORTED
from service.protocols.phone import application_bytes
from tests.conftest import Makers
from tests.support.api_world import Api
from tests.support.attested import SoftDevice
from tests.support.certificates import ca_certificate as _ca
from tests.support.requests import csr_pem as _csr
from tests.support.requests import enrolled_card as _enrolled_card
from tests.support.requests import phone_nonce as _nonce
from tests.support.requests import signed_b64 as _signed
from tests.support.requests import software_key as _key

Tamper = Callable[[SoftDevice, dict[str, ec.EllipticCurvePrivateKey], str], dict[str, str | None]]


@pytest.fixture(scope="module")
def phone(device_maker: Makers) -> SoftDevice:
    return SoftDevice.made_by(device_maker, "attested-phone")


@pytest.fixture(scope="module")
def rogue() -> SoftDevice:
    """A device certified by a maker root the service does not trust."""
    root_key, device_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _ca("Untrusted Maker", root_key, None)
    return SoftDevice(device_key, _ca("rogue attestation", device_key, (root.subject, root_key)))


def _honest(phone: SoftDevice, keys: dict[str, ec.EllipticCurvePrivateKey], nonce: str) -> dict[str, str | None]:
    return {p: phone.attest(k.public_key(), bytes.fromhex(nonce)) for p, k in keys.items()}


GARBAGE = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def _each(attest: Callable[[SoftDevice, ec.EllipticCurvePrivateKey, bytes], str]) -> Tamper:
    return lambda d, keys, nonce: {p: attest(d, k, bytes.fromhex(nonce)) for p, k in keys.items()}


CASES: dict[str, tuple[Tamper, str]] = {
    "none": (lambda d, k, n: dict.fromkeys(k), "no key attestation"),
    "one missing": (lambda d, k, n: {**_honest(d, k, n), "user-authentication": None}, "no key attestation"),
    "another key": (_each(lambda d, k, n: d.attest(_key().public_key(), n)), "another key"),
    "another nonce": (_each(lambda d, k, n: d.attest(k.public_key(), b"\x00" * 32)), "challenge"),
    "imported key": (_each(lambda d, k, n: d.attest(k.public_key(), n, origin=ORIGIN_IMPORTED)), "not generated"),
    "exportable key": (_each(lambda d, k, n: d.attest(k.public_key(), n, no_export=False)), "can leave"),
    "garbage": (lambda d, k, n: dict.fromkeys(k, GARBAGE), "does not parse"),
}


def _body(api: Api, tamper: Tamper, device: SoftDevice) -> tuple[dict[str, Any], str]:
    _, card_key, card_pem = _enrolled_card(api)
    device_id = f"phone-{uuid.uuid4().hex[:8]}"
    keys = {"signature": _key(), "user-authentication": _key()}
    csrs = {p: _csr(k) for p, k in keys.items()}
    nonce = _nonce(api)
    application = application_bytes(nonce, device_id, {p: c.encode() for p, c in csrs.items()})
    attestations = tamper(device, keys, nonce)
    return {"card_certificate_pem": card_pem, "device_id": device_id, "signature_csr_pem": csrs["signature"],
            "user_authentication_csr_pem": csrs["user-authentication"], "nonce": nonce,
            "application_signature_b64": _signed(card_key, application),
            "signature_attestation_pem": attestations["signature"],
            "user_authentication_attestation_pem": attestations["user-authentication"]}, device_id  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_without_a_valid_attestation_the_policy_sees_no_device_key(api: Api, phone: SoftDevice, case: str) -> None:
    tamper, says = CASES[case]
    body, device_id = _body(api, tamper, phone)
    refused = api.post("/v1/phone-enrollments", "holder_app", body)
    assert refused.status_code == 403 and refused.json()["rule_id"] == "P11-ELSE", refused.text
    denial = api.runtime.repo.audit_records(limit=1_000_000)[-1]
    assert denial.action == "policy.deny" and says in json.loads(denial.details)["evidence_refused"], denial.details
    assert not [r for r in api.runtime.repo.certificates() if r.device_id == device_id]


def test_an_untrusted_maker_is_refused(api: Api, rogue: SoftDevice) -> None:
    body, _ = _body(api, _honest, rogue)
    refused = api.post("/v1/phone-enrollments", "holder_app", body)
    assert refused.status_code == 403 and refused.json()["rule_id"] == "P11-ELSE", refused.text
    denial = api.runtime.repo.audit_records(limit=1_000_000)[-1]
    assert "no trusted device maker" in json.loads(denial.details)["evidence_refused"]


def test_an_attested_enrollment_records_the_device_origin(api: Api, phone: SoftDevice) -> None:
    body, device_id = _body(api, _honest, phone)
    enrolled = api.post("/v1/phone-enrollments", "holder_app", body)
    assert enrolled.status_code == 201 and enrolled.json()["decision_rule_id"] == "P11", enrolled.text
    rows = [r for r in api.runtime.repo.certificates() if r.device_id == device_id]
    assert sorted((r.profile, r.key_origin, r.status) for r in rows) == [
        ("signature", "device", "issued"), ("user-authentication", "device", "issued")]  # fmt: skip
