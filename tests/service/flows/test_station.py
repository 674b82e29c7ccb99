"""Card issuance and renewal at the counter station, end to end over HTTP against a live server.

Keys are generated on the station's SoftHSM token, proved with CSRs, certified by the service, injected into
blank card tokens under per-card trusted transport keys, and the station keeps nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, ObjectClass

from devices.errors import ServiceRefused
from devices.station import CardRenewal, Station, call
from hsm import KeyAlgorithm, SignatureScheme
from hsm.errors import KeyGenerationUnsupported
from tests.conftest import TRANSPORT_PINS, SoftHsm
from tests.support.api_world import MIYAZAKI
from tests.support.helpers import openssl_verify, write_pem
from tests.support.live_fixture import Live, card_device, new_resident

HOLDER_PINS = {"signature": "HANAKO2026", "user-authentication": "4321"}
MESSAGE = b"an e-application signed with the new card"


@pytest.fixture(scope="module")
def issued_then_renewed(
    station: Station, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, CardRenewal, CardRenewal, Path]:
    state = tmp_path_factory.mktemp("card-state")
    resident = new_resident(station)
    first = station.renew_card(resident_number=resident, card=card_device(softhsm, "t-card-4", state),
                               card_number="CST00000004", transport_pins=TRANSPORT_PINS["card"],
                               holder_pins=HOLDER_PINS, replaces_card=None)  # fmt: skip
    second = station.renew_card(resident_number=resident, card=card_device(softhsm, "t-card-5", state),
                                card_number="CST00000005", transport_pins=TRANSPORT_PINS["card"],
                                holder_pins=HOLDER_PINS, replaces_card="CST00000004")  # fmt: skip
    return resident, first, second, state


def test_renewal_issues_both_certificates_at_ial3_from_station_keys(
    issued_then_renewed: tuple[str, CardRenewal, CardRenewal, Path], live: Live, tmp_path: Path
) -> None:
    _, first, second, _ = issued_then_renewed
    assert first.proofing["operation"] == "card_issue" and second.proofing["operation"] == "card_renew"
    assert second.proofing["decision"]["assurance_level"] == "IAL3"
    for cred, out in second.certificates.items():
        assert out["key_origin"] == "station" and out["assurance_level"] == "IAL3"
        assert out["replaces_serial"] == first.certificates[cred]["serial"]
        cert = x509.load_pem_x509_certificate(out["certificate_pem"].encode())
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        assert [p.policy_identifier.dotted_string for p in policies] == [second.proofing["decision"]["policy_oid"]]
        leaf = write_pem(tmp_path / f"{cred}.pem", cert)
        ca = "signature" if cred == "signature" else "user-authentication"
        result = openssl_verify(leaf, live.root_pem, live.issuing_pem[ca])
        assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(second.revoked_serials) == sorted(c["serial"] for c in first.certificates.values())
    for out in first.certificates.values():
        old = live.client.get(f"/v1/certificates/{out['serial']}", "municipal_staff").json()
        assert old["status"] == "revoked" and old["revocation_reason"] == "superseded"


def test_old_card_is_superseded(issued_then_renewed: tuple[str, CardRenewal, CardRenewal, Path], live: Live) -> None:
    resident = issued_then_renewed[0]
    cards = {
        c["number"]: c["status"]
        for c in live.client.get(f"/v1/residents/{resident}", "municipal_staff").json()["cards"]
    }
    assert cards == {"CST00000004": "superseded", "CST00000005": "active"}


def test_new_card_holds_injected_keys_that_match_the_certificates(
    issued_then_renewed: tuple[str, CardRenewal, CardRenewal, Path], softhsm: SoftHsm
) -> None:
    _, _, second, state = issued_then_renewed
    card = card_device(softhsm, "t-card-5", state)
    with card.open("signature", HOLDER_PINS["signature"]) as token:
        with token.locked() as session:
            keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
            assert len(keys) == 1
            key = keys[0]
            assert (key[Attribute.LOCAL], key[Attribute.ALWAYS_SENSITIVE], key[Attribute.NEVER_EXTRACTABLE]) == (
                False, False, False)  # fmt: skip
            assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
            label = str(key[Attribute.LABEL])
            stored = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
            assert len(stored) == 1
        signature = token.sign(label, MESSAGE, SignatureScheme.RSA_PKCS1V15_SHA256)
    cert = x509.load_pem_x509_certificate(second.certificates["signature"]["certificate_pem"].encode())
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(KeyGenerationUnsupported):  # and the chip still cannot make a key of its own
        card.open("user-authentication", HOLDER_PINS["user-authentication"]).generate_keypair(KeyAlgorithm.P256, "x")


def test_station_keeps_nothing(
    issued_then_renewed: tuple[str, CardRenewal, CardRenewal, Path], station: Station
) -> None:
    with station.device.open("operator", station.operator_pin) as token, token.locked() as session:
        labels = {str(o[Attribute.LABEL]) for o in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
    assert not any(label.startswith("CST0000000") for label in labels)


def test_contractor_cannot_proof_for_acard_device(station: Station, live: Live) -> None:
    resident = new_resident(station)
    contractor = live.runtime.repo.add_actor("outreach-contractor", "contractor", MIYAZAKI)[1]
    headers = {"Authorization": f"Bearer {contractor}"}
    with httpx.Client(base_url=live.base_url, headers=headers) as http, pytest.raises(ServiceRefused) as refused:
        call(http, "POST", "/v1/proofing-events", {"resident_number": resident, "operation": "card_renew",
             "channel": "outreach_in_person", "evidence": ["photo_id_document"]})  # fmt: skip
    assert refused.value.status == 403 and refused.value.problem["rule_id"] == "P3"
