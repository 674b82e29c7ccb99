"""Smartphone enrollment end to end over HTTP: keys made on the phone (LOCAL), the application signed with the
card's signature key, certificates bound to the card so card events reach them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from pkcs11 import Attribute, ObjectClass
from sqlalchemy import update
from sqlmodel import Session, col, select

from ca.validity import AUTH_CERT_RULE
from devices.capabilities import load_token_profile
from devices.device import Device
from devices.errors import ServiceRefused
from devices.phone import Phone, PhoneEnrollment
from devices.station import CardRenewal, Station, call
from hsm.errors import PinIncorrect
from service.db.models import CertificateRecord
from tests.conftest import TRANSPORT_PINS, Makers, SoftHsm
from tests.support.live_fixture import Live, card_device, new_resident

CARD_PINS = {"signature": "PHONEUSER77", "user-authentication": "7777"}


@pytest.fixture(scope="module")
def enrolled(
    live: Live, station: Station, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory, device_maker: Makers
) -> tuple[str, CardRenewal, PhoneEnrollment, Phone, Device]:
    state = tmp_path_factory.mktemp("phone-state")
    resident = new_resident(station)
    card = card_device(softhsm, "t-card-6", state)
    issued = station.renew_card(resident_number=resident, card=card, card_number="CPH00000006",
                                transport_pins=TRANSPORT_PINS["card"], holder_pins=CARD_PINS,
                                replaces_card=None)  # fmt: skip
    token = live.runtime.repo.add_actor("hanako-phone-app", "holder_app", None)[1]
    http = httpx.Client(base_url=live.base_url, timeout=30.0, headers={"Authorization": f"Bearer {token}"})
    phone = Phone(http, Device(softhsm.module, "t-phone-1", load_token_profile("phone"), state),
                  TRANSPORT_PINS["phone"], "phone-t-phone-1", device_maker.of("t-phone-1"))  # fmt: skip
    enrollment = phone.enroll(card, CARD_PINS["signature"], issued.certificates["signature"]["certificate_pem"])
    return resident, issued, enrollment, phone, card


def test_phone_certificates_are_issued_on_the_card_signature(
    enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device],
) -> None:
    _, issued, enrollment, _, _ = enrolled
    answer = enrollment.answer
    assert answer["decision_rule_id"] == "P11" and answer["assurance_level"] == "IAL3"
    for key in ("signature", "user_authentication"):
        out = answer[key]
        assert out["key_origin"] == "device" and out["status"] == "issued"
    phone_cert = x509.load_pem_x509_certificate(answer["signature"]["certificate_pem"].encode())
    card_cert = x509.load_pem_x509_certificate(issued.certificates["signature"]["certificate_pem"].encode())
    assert phone_cert.public_key() != card_cert.public_key()
    san = phone_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert len(san.get_values_for_type(x509.OtherName)) == 4  # the same four attributes as the card's


def test_phone_keys_were_made_on_the_phone(enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device]) -> None:
    _, _, enrollment, phone, _ = enrolled
    for cred, label in enrollment.key_labels.items():
        with phone.device.open(cred, phone.pins[cred]) as token, token.locked() as session:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            assert key[Attribute.LOCAL] and key[Attribute.NEVER_EXTRACTABLE] and key[Attribute.ALWAYS_SENSITIVE]


def test_replayed_or_forged_applications_are_refused(
    enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device], live: Live
) -> None:
    _, issued, _, phone, card = enrolled
    with pytest.raises(PinIncorrect):  # the holder must know the card's signature password
        phone.enroll(card, "WRONGPASS1", issued.certificates["signature"]["certificate_pem"])
    auth_pem = issued.certificates["user-authentication"]["certificate_pem"]
    with pytest.raises(ServiceRefused) as refused:  # only a signature certificate vouches for a phone
        phone.enroll(card, CARD_PINS["signature"], auth_pem)
    assert refused.value.status == 409
    forged = call(phone.http, "POST", "/v1/phone-enrollments/nonce")["nonce"]
    body = {"card_certificate_pem": issued.certificates["signature"]["certificate_pem"], "device_id": "evil-1",
            "signature_csr_pem": live.csr_pem, "user_authentication_csr_pem": live.csr_pem, "nonce": forged,
            "application_signature_b64": "AAAA"}  # fmt: skip
    with pytest.raises(ServiceRefused, match="not signed by the card's signature key"):
        call(phone.http, "POST", "/v1/phone-enrollments", body)


def test_phone_rekey_supersedes_and_only_the_newest_renews(
    enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device], live: Live
) -> None:
    _, _, enrollment, phone, _ = enrolled
    current = enrollment.answer["user_authentication"]
    renewed, label = phone.renew("user-authentication", enrollment.key_labels["user-authentication"],
                                 current["certificate_pem"])  # fmt: skip
    assert renewed["replaces_serial"] == current["serial"] and renewed["key_origin"] == "device"
    assert renewed["assurance_level"] == "IAL3"
    old = live.client.get(f"/v1/certificates/{current['serial']}", "municipal_staff").json()
    assert old["status"] == "revoked" and old["revocation_reason"] == "superseded"
    with pytest.raises(ServiceRefused, match="newest"):  # the superseded one cannot be renewed again
        phone.renew("user-authentication", enrollment.key_labels["user-authentication"], current["certificate_pem"])
    again, _ = phone.renew("user-authentication", label, renewed["certificate_pem"])  # the newest can
    assert again["replaces_serial"] == renewed["serial"]
    enrollment.answer["user_authentication"] = again  # later tests follow the lineage


def test_a_phone_signature_rekey_never_outlives_the_phones_auth_certificate(
    enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device], live: Live
) -> None:
    _, _, enrollment, phone, _ = enrolled
    auth = enrollment.answer["user_authentication"]  # the newest of its lineage (the re-key test above)
    earlier = (datetime.now(UTC) + timedelta(days=300)).replace(microsecond=0)  # as if issued years ago
    with Session(live.runtime.repo.engine) as session:
        session.exec(update(CertificateRecord).where(col(CertificateRecord.serial_hex) == auth["serial"])
                     .values(not_after=earlier))  # fmt: skip
        session.commit()
    current = enrollment.answer["signature"]
    renewed, label = phone.renew("signature", enrollment.key_labels["signature"], current["certificate_pem"])
    assert x509.load_pem_x509_certificate(renewed["certificate_pem"].encode()).not_valid_after_utc == earlier
    with Session(live.runtime.repo.engine) as session:
        record = session.exec(select(CertificateRecord).where(CertificateRecord.serial_hex == renewed["serial"])).one()
    assert record.validity_rule == AUTH_CERT_RULE
    enrollment.answer["signature"], enrollment.key_labels["signature"] = renewed, label


def test_address_change_revokes_card_and_phone_signature_certificates_only(
    enrolled: tuple[str, CardRenewal, PhoneEnrollment, Phone, Device], station: Station, live: Live, tmp_path: Path
) -> None:
    resident, issued, enrollment, _, _ = enrolled
    change = station.http.patch(f"/v1/residents/{resident}", json={"address": "宮崎県宮崎市別府町3番地"})
    assert change.status_code == 200, change.text
    revoked = set(change.json()["revoked_serials"])
    assert revoked == {issued.certificates["signature"]["serial"], enrollment.answer["signature"]["serial"]}
    for out in (issued.certificates["user-authentication"], enrollment.answer["user_authentication"]):
        assert live.client.get(f"/v1/certificates/{out['serial']}", "municipal_staff").json()["status"] == "issued"
