"""ca/attestation.py: what a verifier accepts as proof that a key was generated on a trusted device."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ca.attestation import (
    ORIGIN_GENERATED,
    ORIGIN_IMPORTED,
    PURPOSE_SIGN,
    SECURITY_STRONGBOX,
    attestation_certificate,
    key_description,
    verify_attestation,
)
from ca.errors import AttestationRefused
from tests.support.certificates import ca_certificate as _ca

CHALLENGE = b"\x01" * 32


@pytest.fixture(scope="module")
def maker() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    root_key, device_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _ca("Maker Root", root_key, None)
    return root, _ca("device attestation", device_key, (root.subject, root_key)), device_key


def _chain(maker: tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey], key: ec.EllipticCurvePublicKey,
           challenge: bytes = CHALLENGE, origin: int = ORIGIN_GENERATED, no_export: bool = True,
           purposes: tuple[int, ...] = (PURPOSE_SIGN,)) -> list[x509.Certificate]:  # fmt: skip
    _, device, device_key = maker
    description = key_description(challenge, origin, no_export, purposes, SECURITY_STRONGBOX)
    leaf = attestation_certificate(device, device_key, key, description)
    return [leaf, device]


def test_a_generated_non_exportable_signing_key_is_attested(maker: tuple) -> None:  # type: ignore[type-arg]
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    attested = verify_attestation(_chain(maker, key), [maker[0]], key, CHALLENGE)
    assert attested.origin == ORIGIN_GENERATED and attested.no_export and PURPOSE_SIGN in attested.purposes
    assert attested.device == maker[1].subject


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("another key", "another key"),
        ("another challenge", "challenge"),
        ("imported", "not generated on the device"),
        ("exportable", "can leave the device"),
        ("not for signing", "not attested for signing"),
        ("untrusted maker", "no trusted device maker"),
        ("leaf only", "a leaf and the device's certificate"),
        ("device is not a CA", "must be CA certificates"),
        ("forged leaf", "not signed by its issuer"),
        ("no description", "no key description"),
    ],
)
def test_what_is_refused(maker: tuple, case: str, says: str) -> None:  # type: ignore[type-arg]
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    root, device, device_key = maker
    roots, challenge = [root], CHALLENGE
    chain = _chain(maker, key)
    if case == "another key":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
    elif case == "another challenge":
        challenge = b"\x02" * 32
    elif case == "imported":
        chain = _chain(maker, key, origin=ORIGIN_IMPORTED)
    elif case == "exportable":
        chain = _chain(maker, key, no_export=False)
    elif case == "not for signing":
        chain = _chain(maker, key, purposes=(3,))
    elif case == "untrusted maker":
        roots = [_ca("Other Maker", ec.generate_private_key(ec.SECP256R1()), None)]
    elif case == "leaf only":
        chain = chain[:1]
    elif case == "device is not a CA":
        other_root_key = ec.generate_private_key(ec.SECP256R1())
        other_root = _ca("Plain Maker", other_root_key, None)
        plain = _ca("device attestation", device_key, (other_root.subject, other_root_key), ca=False)
        chain, roots = _chain((other_root, plain, device_key), key), [other_root]
    elif case == "forged leaf":
        impostor = ec.generate_private_key(ec.SECP256R1())
        chain = [_chain((root, device, impostor), key)[0], device]
    elif case == "no description":
        chain = [_ca("plain", ec.generate_private_key(ec.SECP256R1()), (device.subject, device_key), False), device]
        key = chain[0].public_key()  # type: ignore[assignment]
    with pytest.raises(AttestationRefused, match=says):
        verify_attestation(chain, roots, key, challenge)
