"""Sign-once with lint-first (Boulder): sign a copy with a throwaway key, lint it, then sign the same TBS
on the token and prove the two TBS encodings are identical."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ca.errors import IssuanceRefused
from ca.keyseam import TokenPrivateKey, signature_hash
from ca.lint import LintReport, PkixLinter
from hsm import KeyAlgorithm

ThrowawayKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def throwaway_key(algorithm: KeyAlgorithm) -> ThrowawayKey:
    """A software key of the issuer's algorithm that signs only lint copies and is never stored."""
    if algorithm.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
    curve = ec.SECP384R1() if algorithm is KeyAlgorithm.P384 else ec.SECP256R1()
    return ec.generate_private_key(curve)


@dataclass
class SigningKey:
    """An issuer's token key, its algorithm, and the throwaway key that signs its lint copies."""

    key: TokenPrivateKey
    algorithm: KeyAlgorithm
    lint_key: ThrowawayKey


def lint_copy(
    builder: x509.CertificateBuilder, signing: SigningKey, linter: PkixLinter | None
) -> tuple[bytes | None, LintReport | None]:
    """Sign ``builder`` with the throwaway key and lint it; returns the linted TBS and the report.

    With lint switched off (KOSHIN_LINT=false, benchmarks) there is no copy to sign: (None, None).
    """
    if linter is None:
        return None, None
    copy = builder.sign(signing.lint_key, signature_hash(signing.algorithm))
    return copy.tbs_certificate_bytes, linter.check(copy.public_bytes(Encoding.DER))


def sign_linted(builder: x509.CertificateBuilder, signing: SigningKey, linted_tbs: bytes | None) -> x509.Certificate:
    """Sign on the token and refuse (before anyone sees it) a result whose TBS differs from the linted one."""
    certificate = builder.sign(signing.key, signature_hash(signing.algorithm))
    if linted_tbs is not None and certificate.tbs_certificate_bytes != linted_tbs:
        raise IssuanceRefused("the signed TBS differs from the linted copy; certificate discarded")
    return certificate


def lint_and_sign(builder: x509.CertificateBuilder, signing: SigningKey, linter: PkixLinter | None) -> x509.Certificate:
    linted_tbs, _ = lint_copy(builder, signing, linter)
    return sign_linted(builder, signing, linted_tbs)
