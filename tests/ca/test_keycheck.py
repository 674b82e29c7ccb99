"""Tests for ca.keycheck: CSR parsing, proof of possession, key policy and the ROCA fingerprint.

Software keys appear ONLY here: they stand in for a holder's device key, never for a CA key.
No test prints key material; helpers raise without values.
"""

from __future__ import annotations

import functools
import itertools
import math
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from ca.errors import CaError, CsrInvalid
from ca.keycheck import (
    _ROCA_SUBGROUPS,
    ROCA_PRIMES,
    check_csr,
    check_public_key,
    has_roca_fingerprint,
    load_csr,
)

E = 65537


# --- helpers -------------------------------------------------------------------------------------------


def _make_csr(key: CertificateIssuerPrivateKeyTypes) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koshin test holder")])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return builder.sign(key, None)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 384:
        return builder.sign(key, hashes.SHA384())
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 521:
        return builder.sign(key, hashes.SHA512())
    return builder.sign(key, hashes.SHA256())


def _small_primes(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


def _is_probable_prime(n: int, rounds: int = 40) -> bool:
    """Miller-Rabin with random bases."""
    if n < 4:
        return n in (2, 3)
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(2 + secrets.randbelow(n - 3), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


# The RSALib primorial for 2048-bit keys: the first 126 primes (2..701), 971 bits.
_ROCA_M = math.prod(_small_primes(126))
# k bounds so that sqrt(2^2047) < p < 2^1024: every p is 1024 bits and every p*q is 2048 bits.
_K_MIN = math.isqrt(1 << 2047) // _ROCA_M + 1
_K_MAX = (1 << 1024) // _ROCA_M - 2


def _roca_prime() -> int:
    """A 1024-bit prime of the RSALib form k*M + (65537^a mod M)."""
    while True:
        k = _K_MIN + secrets.randbelow(_K_MAX - _K_MIN + 1)
        p = k * _ROCA_M + pow(E, secrets.randbits(64), _ROCA_M)
        if _is_probable_prime(p, rounds=1) and _is_probable_prime(p):
            return p


@functools.cache
def _roca_key() -> rsa.RSAPrivateKey:
    """A real RSA-2048 key with ROCA-structured primes (as an affected Infineon chip would make)."""
    while True:
        p, q = _roca_prime(), _roca_prime()
        n = p * q
        phi = (p - 1) * (q - 1)
        if p == q or n.bit_length() != 2048 or math.gcd(E, phi) != 1:
            continue
        d = pow(E, -1, phi)
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=rsa.rsa_crt_dmp1(d, p),
            dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(E, n),
        )
        return numbers.private_key()


@functools.cache
def _rsa2048_pool() -> tuple[rsa.RSAPrivateKey, ...]:
    return tuple(rsa.generate_private_key(public_exponent=E, key_size=2048) for _ in range(4))


def _random_moduli(count: int) -> list[int]:
    """`count` 2048-bit products of two independent random 1024-bit primes, from 4 generated keys."""
    primes: list[int] = []
    for key in _rsa2048_pool():
        numbers = key.private_numbers()
        primes += [numbers.p, numbers.q]
    return [p * q for p, q in itertools.combinations(primes, 2)][:count]


def _rsa_public(bits: int, e: int = E) -> rsa.RSAPublicKey:
    """A public key with an odd random modulus of exactly `bits` bits (enough for policy checks)."""
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(e, n).public_key()


@pytest.fixture(scope="module")
def rsa2048_csr() -> x509.CertificateSigningRequest:
    return _make_csr(_rsa2048_pool()[0])


# --- ROCA fingerprint ----------------------------------------------------------------------------------


def test_roca_primes_are_3_to_167() -> None:
    assert tuple(p for p in _small_primes(39) if p != 2) == ROCA_PRIMES
    assert ROCA_PRIMES[-1] == 167


def test_roca_subgroups_match_published_masks() -> None:
    # First masks of the crocs-muni/roca detector: bit r set iff r is in <65537> mod p.
    published = [6, 30, 126, 1026, 5658, 107286, 199410, 8388606]
    masks = [sum(1 << r for r in subgroup) for _, subgroup in _ROCA_SUBGROUPS[: len(published)]]
    assert masks == published


def test_roca_key_has_the_fingerprint() -> None:
    key = _roca_key()
    assert key.key_size == 2048
    assert has_roca_fingerprint(key.public_key().public_numbers().n)


def test_random_moduli_do_not_have_the_fingerprint() -> None:
    moduli = _random_moduli(20)
    assert len(set(moduli)) == 20
    assert all(n.bit_length() == 2048 for n in moduli)
    assert [n for n in moduli if has_roca_fingerprint(n)] == []


def test_roca_key_is_rejected() -> None:
    with pytest.raises(CsrInvalid, match="ROCA"):
        check_public_key(_roca_key().public_key())
    with pytest.raises(CsrInvalid, match="ROCA"):
        check_csr(_make_csr(_roca_key()))


# --- key policy ----------------------------------------------------------------------------------------


def test_rsa2048_csr_passes(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    assert check_csr(rsa2048_csr) == "rsa2048"


@pytest.mark.parametrize(("curve", "expected"), [(ec.SECP256R1(), "p256"), (ec.SECP384R1(), "p384")])
def test_allowed_curves_pass(curve: ec.EllipticCurve, expected: str) -> None:
    assert check_csr(_make_csr(ec.generate_private_key(curve))) == expected


@pytest.mark.parametrize(("bits", "expected"), [(2048, "rsa2048"), (3072, "rsa3072"), (4096, "rsa4096")])
def test_allowed_rsa_sizes(bits: int, expected: str) -> None:
    assert check_public_key(_rsa_public(bits)) == expected


def test_p521_rejected() -> None:
    with pytest.raises(CsrInvalid, match="unsupported curve secp521r1"):
        check_csr(_make_csr(ec.generate_private_key(ec.SECP521R1())))


def test_ed25519_rejected() -> None:
    with pytest.raises(CsrInvalid, match="unsupported key type Ed25519"):
        check_csr(_make_csr(ed25519.Ed25519PrivateKey.generate()))


def test_non_signing_key_type_rejected() -> None:
    with pytest.raises(CsrInvalid, match="unsupported key type X25519"):
        check_public_key(x25519.X25519PrivateKey.generate().public_key())


def test_rsa1024_rejected_with_size() -> None:
    key = rsa.generate_private_key(public_exponent=E, key_size=1024)  # noqa: S505 -- the weak key under test
    with pytest.raises(CsrInvalid, match=r"RSA key of 1024 bits is too small \(minimum 2048\)"):
        check_csr(_make_csr(key))


def test_rsa2047_rejected_as_too_small() -> None:
    with pytest.raises(CsrInvalid, match="RSA key of 2047 bits is too small"):
        check_public_key(_rsa_public(2047))


def test_odd_rsa_size_rejected() -> None:
    with pytest.raises(CsrInvalid, match="unsupported RSA key size 2560"):
        check_public_key(_rsa_public(2560))


def test_rsa_exponent_3_rejected() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    with pytest.raises(CsrInvalid, match="RSA public exponent 3 is not 65537"):
        check_csr(_make_csr(key))


def test_errors_are_ca_errors() -> None:
    with pytest.raises(CaError):
        check_public_key(_rsa_public(2048, e=3))


# --- load_csr ------------------------------------------------------------------------------------------


def test_load_csr_accepts_pem_and_der(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    der = rsa2048_csr.public_bytes(serialization.Encoding.DER)
    pem = rsa2048_csr.public_bytes(serialization.Encoding.PEM)
    assert load_csr(der).public_bytes(serialization.Encoding.DER) == der
    assert load_csr(pem).public_bytes(serialization.Encoding.DER) == der
    assert load_csr(b"\n  " + pem).public_bytes(serialization.Encoding.DER) == der


@pytest.mark.parametrize("data", [b"", b"not a certificate request", bytes(range(256))])
def test_load_csr_rejects_garbage(data: bytes) -> None:
    with pytest.raises(CsrInvalid, match="malformed CSR"):
        load_csr(data)


def test_load_csr_rejects_truncated_pem(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    pem = rsa2048_csr.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrInvalid, match="malformed CSR"):
        load_csr(pem[: len(pem) // 2])


def test_load_csr_rejects_truncated_der(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    der = rsa2048_csr.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CsrInvalid, match="malformed CSR"):
        load_csr(der[:-10])


def test_load_csr_rejects_flipped_signature(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    der = bytearray(rsa2048_csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0xFF  # the last bytes of the DER are the signature BIT STRING
    with pytest.raises(CsrInvalid, match=r"CSR signature does not verify \(no proof of possession\)"):
        load_csr(bytes(der))


def test_check_csr_rejects_flipped_signature(rsa2048_csr: x509.CertificateSigningRequest) -> None:
    der = bytearray(rsa2048_csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(CsrInvalid, match="no proof of possession"):
        check_csr(tampered)
