"""Signature schemes and the raw signing call on a token key."""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import MGF, Mechanism
from pkcs11.types import SignMixin

from hsm.keys import KeyAlgorithm


class SignatureScheme(enum.StrEnum):
    RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
    RSA_PKCS1V15_SHA384 = "rsa-pkcs1v15-sha384"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PSS_SHA384 = "rsa-pss-sha384"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"

    @property
    def hash_name(self) -> str:
        return "sha384" if self.value.endswith("384") else "sha256"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")


def default_scheme(algorithm: KeyAlgorithm) -> SignatureScheme:
    """RSA keys sign PKCS#1 v1.5 with SHA-256 (JPKI's sha256WithRSAEncryption); P-384 pairs with SHA-384."""
    if algorithm.is_rsa:
        return SignatureScheme.RSA_PKCS1V15_SHA256
    return SignatureScheme.ECDSA_SHA384 if algorithm is KeyAlgorithm.P384 else SignatureScheme.ECDSA_SHA256


_RSA_MECHANISMS = {
    SignatureScheme.RSA_PKCS1V15_SHA256: (Mechanism.SHA256_RSA_PKCS, None),
    SignatureScheme.RSA_PKCS1V15_SHA384: (Mechanism.SHA384_RSA_PKCS, None),
    SignatureScheme.RSA_PSS_SHA256: (Mechanism.SHA256_RSA_PKCS_PSS, (Mechanism.SHA256, MGF.SHA256, 32)),
    SignatureScheme.RSA_PSS_SHA384: (Mechanism.SHA384_RSA_PKCS_PSS, (Mechanism.SHA384, MGF.SHA384, 48)),
}


def sign_with(key: SignMixin, data: bytes, scheme: SignatureScheme) -> bytes:
    """Sign ``data`` on the token. RSA: the token hashes (CKM_SHA*_RSA_PKCS[_PSS]). ECDSA: the digest is
    computed here and signed with plain CKM_ECDSA, which every token offers (SoftHSM 2.6 has no
    CKM_ECDSA_SHA256); the raw r||s answer is returned as a DER ECDSA-Sig-Value."""
    if scheme.is_rsa:
        mechanism, params = _RSA_MECHANISMS[scheme]
        return bytes(key.sign(data, mechanism=mechanism, mechanism_param=params))
    digest = hashlib.new(scheme.hash_name, data).digest()
    raw = bytes(key.sign(digest, mechanism=Mechanism.ECDSA))
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
