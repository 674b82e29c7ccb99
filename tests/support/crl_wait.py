"""Waiting for CRL publication: the publisher signs CRLs outside the request that revoked (coalesced), so a test
polls the distribution point until the CRL it expects is served, with a deadline that fails loudly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from cryptography import x509

DEADLINE_SECONDS = 30.0


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def wait_for_crl(
    fetch: Callable[[], bytes], serials: Iterable[int] = (), *, newer_than: int = 0, timeout: float = DEADLINE_SECONDS
) -> x509.CertificateRevocationList:
    """The first CRL ``fetch`` returns that lists every one of ``serials`` and is numbered above ``newer_than``."""
    wanted = set(serials)
    deadline = time.monotonic() + timeout
    seen = "nothing"
    while True:
        crl = x509.load_der_x509_crl(fetch())
        listed = {entry.serial_number for entry in crl}
        if wanted <= listed and crl_number(crl) > newer_than:
            return crl
        seen = f"CRL #{crl_number(crl)} listing {len(listed)}, missing {len(wanted - listed)}"
        if time.monotonic() > deadline:
            raise AssertionError(f"no CRL published within {timeout:.0f} s with the revocations expected ({seen})")
        time.sleep(0.1)
