"""Pre-signed OCSP responses (RFC 5019 style): a response signed once is served again, unchanged, while it is
well inside its validity, to every request for the same certificate that carries no nonce.

A request with a nonce always gets a freshly signed response (the nonce must be echoed). The owner of the
status store calls ``forget(serial)`` when a certificate's status changes, so a cached "good" is never
served after its revocation is recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.x509 import ocsp

from ca.ocsp import OcspResponder

CacheKey = tuple[str, bytes, bytes, int, str | None]  # (CertID hash, issuerNameHash, issuerKeyHash, serial, path CA)


@dataclass(frozen=True)
class _Cached:
    response_der: bytes
    next_update: datetime


class CachedOcspResponder:
    """Wraps an ``OcspResponder``; thread-safe; at most ``max_entries`` responses are kept."""

    def __init__(
        self, responder: OcspResponder, *, refresh_before: timedelta = timedelta(minutes=10), max_entries: int = 100_000
    ) -> None:
        self._responder, self._refresh_before, self._max = responder, refresh_before, max_entries
        self._cache: dict[CacheKey, _Cached] = {}
        self._lock = threading.Lock()

    def respond(self, request_der: bytes, now: datetime | None = None, *, issuer_name: str | None = None) -> bytes:
        key = _cache_key(request_der, issuer_name)
        moment = now or datetime.now(UTC)
        if key is not None:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit.next_update - self._refresh_before > moment:
                return hit.response_der
        response_der = self._responder.respond(request_der, now, issuer_name=issuer_name)
        if key is not None:
            self._remember(key, response_der)
        return response_der

    def forget(self, serial: int) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[3] == serial]:
                del self._cache[key]

    def _remember(self, key: CacheKey, response_der: bytes) -> None:
        response = ocsp.load_der_ocsp_response(response_der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL or response.next_update_utc is None:
            return
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = _Cached(response_der, response.next_update_utc)


def _cache_key(request_der: bytes, issuer_name: str | None) -> CacheKey | None:
    """The CertID of a nonce-less single request; None when the request must be answered fresh."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        request.extensions.get_extension_for_class(x509.OCSPNonce)
        return None
    except x509.ExtensionNotFound:
        return (request.hash_algorithm.name, request.issuer_name_hash, request.issuer_key_hash, request.serial_number,
                issuer_name)  # fmt: skip
    except Exception:  # malformed: the responder answers it (unsigned)
        return None
