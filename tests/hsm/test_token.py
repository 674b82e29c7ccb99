"""The token layer against a real SoftHSM token: key generation, signing, errors, threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, ObjectClass

from hsm import (
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    KeyRef,
    PinIncorrect,
    SignatureScheme,
    TokenNotFound,
    TokenSession,
)
from tests.conftest import SoftHsm

MESSAGE = b"koshin token layer test message"
SCHEMES = {
    KeyAlgorithm.RSA2048: list(SignatureScheme)[:4],
    KeyAlgorithm.RSA3072: list(SignatureScheme)[:4],
    KeyAlgorithm.P256: [SignatureScheme.ECDSA_SHA256, SignatureScheme.ECDSA_SHA384],
    KeyAlgorithm.P384: [SignatureScheme.ECDSA_SHA256, SignatureScheme.ECDSA_SHA384],
}


def _verify(public_der: bytes, signature: bytes, scheme: SignatureScheme) -> None:
    public = serialization.load_der_public_key(public_der)
    digest = hashes.SHA384() if scheme.hash_name == "sha384" else hashes.SHA256()
    if isinstance(public, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(digest), digest.digest_size) if "pss" in scheme.value else padding.PKCS1v15()
        )
        public.verify(signature, MESSAGE, pad, digest)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, MESSAGE, ec.ECDSA(digest))


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=str)
def test_generate_and_sign_every_scheme(token: TokenSession, algorithm: KeyAlgorithm) -> None:
    label = f"tok-{algorithm}"
    ref = token.generate_keypair(algorithm, label)
    assert ref.label == label and len(ref.key_id) == 16
    assert KeyRef.parse(ref.uri()) == ref
    assert token.algorithm_of(label) is algorithm
    public_der = token.public_key_der(label)
    public = serialization.load_der_public_key(public_der)
    if algorithm.is_rsa:
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == algorithm.rsa_bits
        assert public.public_numbers().e == 65537
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == algorithm.curve_name
    for scheme in SCHEMES[algorithm]:
        signature = token.sign(label, MESSAGE, scheme)
        _verify(public_der, signature, scheme)
        with pytest.raises(InvalidSignature):
            _verify(public_der, signature[:-1] + bytes([signature[-1] ^ 1]), scheme)


def test_private_template_is_explicit(token: TokenSession) -> None:
    token.generate_keypair(KeyAlgorithm.P256, "tok-template")
    with token.locked() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="tok-template")
        expected = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        assert {attr: key[attr] for attr in expected} == expected
        assert key[Attribute.ID] == token.key_ref("tok-template").key_id


def test_labels_are_never_reused(token: TokenSession) -> None:
    token.generate_keypair(KeyAlgorithm.P256, "tok-unique")
    with pytest.raises(KeyExists, match="tok-unique"):
        token.generate_keypair(KeyAlgorithm.P384, "tok-unique")


def test_missing_key_is_a_typed_error(token: TokenSession) -> None:
    with pytest.raises(KeyNotFound, match="no-such-key"):
        token.sign("no-such-key", MESSAGE, SignatureScheme.ECDSA_SHA256)
    with pytest.raises(KeyNotFound):
        token.public_key_der("no-such-key")


WRONG_PIN_PROBE = """
import sys
from hsm import PinIncorrect, TokenSession
try:
    TokenSession(sys.argv[1], sys.argv[2], sys.stdin.read())
except PinIncorrect:
    sys.exit(3)
sys.exit(0)
"""


def test_wrong_pin_is_refused_by_the_token(softhsm: SoftHsm) -> None:
    """In a fresh process (no login yet), so the token itself judges the PIN."""
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)}
    args = [sys.executable, "-c", WRONG_PIN_PROBE, softhsm.module, softhsm.token_label]
    wrong = subprocess.run(args, input=softhsm.pin + "x", env=env, capture_output=True, text=True, check=False)
    assert wrong.returncode == 3, wrong.stderr[-500:]
    right = subprocess.run(args, input=softhsm.pin, env=env, capture_output=True, text=True, check=False)
    assert right.returncode == 0, right.stderr[-500:]


def test_second_handle_shares_the_login_and_checks_the_pin(softhsm: SoftHsm, token: TokenSession) -> None:
    with pytest.raises(PinIncorrect):
        TokenSession(softhsm.module, softhsm.token_label, softhsm.pin + "x")
    with TokenSession(softhsm.module, softhsm.token_label, softhsm.pin) as second:
        second.generate_keypair(KeyAlgorithm.P256, "tok-second-handle")
    assert token.has_key("tok-second-handle")  # the first handle still works after the second closed


def test_unknown_token(softhsm: SoftHsm) -> None:
    with pytest.raises(TokenNotFound):
        TokenSession(softhsm.module, "no-such-token", softhsm.pin)


def test_delete_key(token: TokenSession) -> None:
    token.generate_keypair(KeyAlgorithm.P256, "tok-delete")
    token.delete_key("tok-delete")
    assert not token.has_key("tok-delete")
    with pytest.raises(KeyNotFound):
        token.public_key_der("tok-delete")


def test_signing_from_many_threads(token: TokenSession) -> None:
    """python-pkcs11 initialises SoftHSM without OS locking; the module lock makes threads safe."""
    token.generate_keypair(KeyAlgorithm.P256, "tok-threads-ec")
    token.generate_keypair(KeyAlgorithm.RSA2048, "tok-threads-rsa")
    jobs = [("tok-threads-ec", SignatureScheme.ECDSA_SHA256), ("tok-threads-rsa", SignatureScheme.RSA_PSS_SHA256)]
    public = {label: token.public_key_der(label) for label, _ in jobs}
    results: list[tuple[str, SignatureScheme, bytes]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        label, scheme = jobs[index % 2]
        try:
            for _ in range(40):
                signature = token.sign(label, MESSAGE, scheme)
                with lock:
                    results.append((label, scheme, signature))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a signing thread hung"
    assert failures == []
    assert len(results) == 8 * 40
    for label, scheme, signature in results:
        _verify(public[label], signature, scheme)
