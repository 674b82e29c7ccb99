"""The service side of key attestation: which requests show keys generated on a trusted device.

A phone (or next-generation card) sends, with each CSR, the attestation chain its secure element made for that
key (ca/attestation.py, devices/attestation.py). Only when every key of the request verifies against
the configured device-maker roots (``KOSHIN_DEVICE_MAKER_ROOTS``, and ``KOSHIN_HOME/device-makers.pem``), under
the request's challenge, does the policy see ``device_generated_key``; otherwise it sees no such evidence and
says why in the refusal's audit row. The challenge is the request's server nonce (REST), or the SHA-256 of
the certificate being re-keyed (CMP ``kur``, where the client picks the nonces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from ca.attestation import verify_attestation
from ca.errors import AttestationRefused
from service.policy.model import Evidence
from service.runtime import Runtime


@dataclass(frozen=True)
class DeviceKeys:
    evidence: frozenset[Evidence]  # {device_generated_key} when every key is attested, else empty
    refused: str | None = None  # why not


def device_key_evidence(
    rt: Runtime, keys: Sequence[tuple[str, PublicKeyTypes, bytes | None]], challenge: bytes
) -> DeviceKeys:
    """``keys``: (what, public key, PEM attestation chain or None) for every key of the request."""
    for what, public_key, chain_pem in keys:
        if not chain_pem:
            return DeviceKeys(frozenset(), f"{what}: no key attestation")
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
            verify_attestation(chain, rt.device_maker_roots, public_key, challenge)
        except ValueError as exc:
            return DeviceKeys(frozenset(), f"{what}: attestation does not parse ({exc})")
        except AttestationRefused as exc:
            return DeviceKeys(frozenset(), f"{what}: {exc}")
    return DeviceKeys(frozenset({Evidence.DEVICE_GENERATED_KEY}))
