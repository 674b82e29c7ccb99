"""Card keys are made at a station and injected; they must carry the PKCS#11 mark of an injected key, never
be wrappable again, and the station must keep no copy. CA and phone keys must NOT carry that mark (the rest of
this suite checks them: ALWAYS_SENSITIVE, NEVER_EXTRACTABLE and LOCAL all true)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import KeyNotWrappable, KeyUnextractable, PKCS11Error

from ca.keyseam import signature_hash, token_private_key
from devices.capabilities import load_token_profile
from devices.device import Device
from devices.injection import inject, kek_label, provision_transport_key, store_certificate
from hsm import KeyAlgorithm, KeyNotFound, SignatureScheme, TokenSession
from tests.conftest import TRANSPORT_PINS, SoftHsm

INJECTED_MARK = {"SENSITIVE": True, "EXTRACTABLE": False, "LOCAL": False, "ALWAYS_SENSITIVE": False,
                 "NEVER_EXTRACTABLE": False, "SIGN": True, "DECRYPT": False}  # fmt: skip
MESSAGE = b"signed by a key that was made at the station and now lives only on the card"


@pytest.fixture(scope="module")
def injected(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Card t-card-1 receives an RSA-2048 signature key and a P-256 auth key from the station."""
    state = tmp_path_factory.mktemp("devices")
    station = Device(softhsm.module, "t-station", load_token_profile("station"), state)
    card = Device(softhsm.module, "t-card-1", load_token_profile("card"), state)
    cards = {cred: card.open(cred, TRANSPORT_PINS["card"][cred]) for cred in ("signature", "user-authentication")}
    for token in cards.values():  # card manufacture: the SO puts a trusted transport key on the station
        provision_transport_key(softhsm.module, station.token_label("operator"), softhsm.device_so_pin, token)
    station_token = station.open("operator", TRANSPORT_PINS["station"]["operator"])
    publics: dict[str, bytes] = {}
    for cred, algorithm in (("signature", KeyAlgorithm.RSA2048), ("user-authentication", KeyAlgorithm.P256)):
        label = f"inj-{cred}"
        station_token.generate_keypair(algorithm, label, for_injection=True)
        publics[cred] = station_token.public_key_der(label)
        if cred == "signature":  # an untrusted wrapping key is refused before the real injection
            with station_token.locked() as session:
                untrusted = session.generate_key(
                    KeyType.AES, 256, template={Attribute.TOKEN: False, Attribute.WRAP: True}
                )
                private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                with pytest.raises(KeyNotWrappable):
                    untrusted.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        inject(station_token, cards[cred], label, algorithm)
    yield {"station": station_token, "cards": cards, "publics": publics}
    station_token.close()
    for token in cards.values():
        token.close()


def _attrs(token: TokenSession, label: str) -> dict[str, bool]:
    with token.locked() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        return {name: bool(key[getattr(Attribute, name)]) for name in INJECTED_MARK}


@pytest.mark.parametrize("cred", ["signature", "user-authentication"])
def test_card_key_carries_the_injected_mark(injected: dict[str, object], cred: str) -> None:
    cards: dict[str, TokenSession] = injected["cards"]  # type: ignore[assignment]
    assert _attrs(cards[cred], f"inj-{cred}") == INJECTED_MARK


@pytest.mark.parametrize("cred", ["signature", "user-authentication"])
def test_station_keeps_no_copy(injected: dict[str, object], cred: str) -> None:
    station: TokenSession = injected["station"]  # type: ignore[assignment]
    assert not station.has_key(f"inj-{cred}")
    with pytest.raises(KeyNotFound):
        station.public_key_der(f"inj-{cred}")


@pytest.mark.parametrize("cred", ["signature", "user-authentication"])
def test_no_key_can_export_a_card_key(injected: dict[str, object], cred: str) -> None:
    cards: dict[str, TokenSession] = injected["cards"]  # type: ignore[assignment]
    with cards[cred].locked() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=f"inj-{cred}")
        fresh = session.generate_key(KeyType.AES, 256, template={Attribute.TOKEN: False, Attribute.WRAP: True})
        for mechanism in (Mechanism.AES_KEY_WRAP_PAD, Mechanism.AES_KEY_WRAP):
            with pytest.raises((KeyUnextractable, KeyNotWrappable)):
                fresh.wrap_key(key, mechanism=mechanism)
        kek = session.get_key(object_class=ObjectClass.SECRET_KEY, label=kek_label(cards[cred].token_label))
        assert not kek[Attribute.WRAP] and kek[Attribute.UNWRAP]  # the card's KEK can only bring keys in
        # SoftHSM lets the user switch CKA_WRAP on; even then the injected key does not leave: it is not
        # EXTRACTABLE, and that (not the KEK's flags) is what protects it.
        kek[Attribute.WRAP] = True
        try:
            wrapper = session.get_key(object_class=ObjectClass.SECRET_KEY, label=kek_label(cards[cred].token_label))
            with pytest.raises(KeyUnextractable):
                wrapper.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        finally:
            kek[Attribute.WRAP] = False
        for attribute in (Attribute.PRIVATE_EXPONENT, Attribute.VALUE):
            with pytest.raises(PKCS11Error):
                key[attribute]
        with pytest.raises(PKCS11Error):
            key[Attribute.EXTRACTABLE] = True


def test_card_keys_sign_for_the_public_keys_the_station_made(injected: dict[str, object], tmp_path: Path) -> None:
    cards: dict[str, TokenSession] = injected["cards"]  # type: ignore[assignment]
    publics: dict[str, bytes] = injected["publics"]  # type: ignore[assignment]
    signature = cards["signature"].sign("inj-signature", MESSAGE, SignatureScheme.RSA_PKCS1V15_SHA256)
    rsa_public = serialization.load_der_public_key(publics["signature"])
    assert isinstance(rsa_public, rsa.RSAPublicKey)
    rsa_public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    ec_public = serialization.load_der_public_key(publics["user-authentication"])
    assert isinstance(ec_public, ec.EllipticCurvePublicKey)
    ec_public.verify(cards["user-authentication"].sign("inj-user-authentication", MESSAGE,
                     SignatureScheme.ECDSA_SHA256), MESSAGE, ec.ECDSA(hashes.SHA256()))  # fmt: skip
    # a CSR signed on the card (proof of possession) and a certificate object stored beside the key
    key = token_private_key(cards["user-authentication"], "inj-user-authentication")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, signature_hash(KeyAlgorithm.P256))
    assert csr.is_signature_valid
    ref = cards["user-authentication"].key_ref("inj-user-authentication")
    store_certificate(cards["user-authentication"], "inj-user-authentication", ref.key_id, b"0\x03\x02\x01\x00",
                      name.public_bytes())  # fmt: skip
    with cards["user-authentication"].locked() as session:
        stored = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: ref.key_id}))
        assert len(stored) == 1
