"""Key attestation on real tokens: a phone's secure element (SoftHSM) attests the key it generated, the chain
verifies with ``openssl verify`` and with the service's verifier; a card chip cannot make an attestation key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

from ca.attestation import KEY_DESCRIPTION_OID, KeyDescription, verify_attestation
from devices.attestation import attest
from devices.capabilities import load_token_profile
from hsm import KeyAlgorithm, TokenSession
from hsm.errors import HsmError
from tests.conftest import TRANSPORT_PINS, Makers, SoftHsm
from tests.support.helpers import openssl, run

CHALLENGE = bytes(range(32))


def test_a_phone_key_is_attested_and_openssl_verifies_the_chain(
    softhsm: SoftHsm, device_maker: Makers, tmp_path: Path
) -> None:
    with TokenSession(softhsm.module, "t-phone-0-signature", TRANSPORT_PINS["phone"]["signature"]) as phone:
        phone.generate_keypair(KeyAlgorithm.P256, "attested-key")
        public_key = load_der_public_key(phone.public_key_der("attested-key"))
        chain_pem = attest(phone, "attested-key", device_maker.of("t-phone-0")["signature"], CHALLENGE)
    leaf, device = x509.load_pem_x509_certificates(chain_pem)
    attested = verify_attestation([leaf, device], [device_maker.maker.certificate], public_key, CHALLENGE)
    assert attested.no_export and attested.origin == 0  # the token's own CKA_LOCAL / CKA_NEVER_EXTRACTABLE
    extension = leaf.extensions.get_extension_for_oid(KEY_DESCRIPTION_OID).value
    assert isinstance(extension, x509.UnrecognizedExtension)
    description = KeyDescription.load(extension.value)
    assert description["attestation_challenge"].native == CHALLENGE
    paths = {name: tmp_path / f"{name}.pem" for name in ("leaf", "device", "root")}
    for name, certificate in (("leaf", leaf), ("device", device), ("root", device_maker.maker.certificate)):
        paths[name].write_bytes(certificate.public_bytes(Encoding.PEM))
    result = run([openssl(), "verify", "-CAfile", str(paths["root"]), "-untrusted", str(paths["device"]),
                  str(paths["leaf"])])  # fmt: skip
    assert result.returncode == 0 and f"{paths['leaf']}: OK" in result.stdout, result.stdout + result.stderr
    other_root = tmp_path / "other.pem"
    other_root.write_bytes(device.public_bytes(Encoding.PEM))  # not a maker root: the chain does not end there
    refused = run([openssl(), "verify", "-CAfile", str(other_root), str(paths["leaf"])])
    assert refused.returncode != 0


def test_a_card_chip_cannot_hold_an_attestation_key(softhsm: SoftHsm, device_maker: Makers) -> None:
    """The card's keys are made at the station and injected: the chip generates none, so it has no attestation
    key, and its certificates record key_origin "station" with no attestation."""
    card = load_token_profile("card")
    assert not card.can_generate_keys and card.accepts_injected_keys
    with (
        TokenSession(softhsm.module, softhsm.token_label, softhsm.pin, can_generate_keys=card.can_generate_keys,
                     accepts_injected_keys=card.accepts_injected_keys) as chip,
        pytest.raises(HsmError, match="generate"),
    ):  # fmt: skip
        device_maker.maker.certify(chip, "a card chip")
