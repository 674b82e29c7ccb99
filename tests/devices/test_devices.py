"""Token kinds: capability profiles, the card's refusal to generate keys, and persisted PIN failure counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pkcs11 import Attribute, ObjectClass

from devices.capabilities import load_token_profile
from devices.device import Device
from devices.errors import TokenProfileInvalid
from hsm import KeyAlgorithm, PinIncorrect, PinLocked
from hsm.errors import KeyGenerationUnsupported, PinFormatInvalid
from tests.conftest import TRANSPORT_PINS, SoftHsm


def device(softhsm: SoftHsm, name: str, state: Path) -> Device:
    return Device(softhsm.module, name, load_token_profile(softhsm.devices[name]), state)


def test_profiles() -> None:
    card, nextgen = load_token_profile("card"), load_token_profile("next-gen-card")
    assert not card.can_generate_keys and card.accepts_injected_keys
    assert nextgen.can_generate_keys and not nextgen.accepts_injected_keys
    assert load_token_profile("phone").can_generate_keys and load_token_profile("station").can_generate_keys
    assert card.credentials["signature"].max_failures == 5
    assert card.credentials["user-authentication"].max_failures == 3
    assert card.credentials["signature"].accepts("ABC123") and not card.credentials["signature"].accepts("abc123")
    assert not card.credentials["signature"].accepts("A" * 17) and not card.credentials["signature"].accepts("ABCDE")
    assert card.credentials["user-authentication"].accepts("0420")
    assert not card.credentials["user-authentication"].accepts("04200")
    with pytest.raises(TokenProfileInvalid):
        load_token_profile("toaster")


def test_card_refuses_key_generation_and_phone_and_next_gen_make_local_keys(softhsm: SoftHsm, tmp_path: Path) -> None:
    card = device(softhsm, "t-card-0", tmp_path)
    with card.open("signature", TRANSPORT_PINS["card"]["signature"]) as token:
        with pytest.raises(KeyGenerationUnsupported, match="cannot generate"):
            token.generate_keypair(KeyAlgorithm.RSA2048, "should-not-exist")
        assert not token.has_key("should-not-exist")
    for name in ("t-phone-0", "t-nextgen-0"):
        with device(softhsm, name, tmp_path).open("user-authentication", "0000") as token:
            token.generate_keypair(KeyAlgorithm.P256, f"{name}-auth")
            with token.locked() as session:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=f"{name}-auth")
                assert key[Attribute.LOCAL] and key[Attribute.NEVER_EXTRACTABLE] and key[Attribute.ALWAYS_SENSITIVE]


def test_failure_counter_persists_resets_and_locks(softhsm: SoftHsm, tmp_path: Path) -> None:
    card = device(softhsm, "t-card-3", tmp_path)
    with pytest.raises(PinFormatInvalid):
        card.open("user-authentication", "12345")  # wrong form: the token is not asked, nothing counts
    assert card.failures("user-authentication") == 0
    with pytest.raises(PinIncorrect, match="2 tries left"):
        card.open("user-authentication", "9999")
    assert device(softhsm, "t-card-3", tmp_path).failures("user-authentication") == 1  # persisted
    card.open("user-authentication", "0000").close()
    assert card.failures("user-authentication") == 0  # a successful login resets
    for left in ("2 tries left", "1 tries left"):
        with pytest.raises(PinIncorrect, match=left):
            card.open("user-authentication", "9999")
    with pytest.raises(PinLocked, match="locked after 3"):
        card.open("user-authentication", "9999")
    with pytest.raises(PinLocked):  # even the right PIN is not tried once locked
        device(softhsm, "t-card-3", tmp_path).open("user-authentication", "0000")
    # the signature credential is independent and locks after 5
    for _ in range(4):
        with pytest.raises(PinIncorrect):
            card.open("signature", "WRONG1")
    with pytest.raises(PinLocked, match="locked after 5"):
        card.open("signature", "WRONG1")


def test_holder_sets_the_signature_password(softhsm: SoftHsm, tmp_path: Path) -> None:
    card = device(softhsm, "t-card-2", tmp_path)
    with pytest.raises(PinFormatInvalid):
        card.set_pin("signature", TRANSPORT_PINS["card"]["signature"], "short")
    card.set_pin("signature", TRANSPORT_PINS["card"]["signature"], "MYPASS2026")
    card.open("signature", "MYPASS2026").close()
    with pytest.raises(PinIncorrect):
        device(softhsm, "t-card-2", tmp_path / "other-state").open("signature", TRANSPORT_PINS["card"]["signature"])
