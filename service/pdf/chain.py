"""The certificates around a signer: the issuer chain and the trust anchor, from PEM files or the koshin
service's publication endpoints (``GET /v1/ca/chain``: root first, then the issuing CAs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509

from service.pdf.errors import ChainUnavailable

FETCH_TIMEOUT = 15.0


@dataclass(frozen=True)
class Chain:
    """The signer's issuing CA(s) and the root it leads to."""

    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [*self.intermediates, self.root]


def load_pem_bundle(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError as exc:
        raise ChainUnavailable(f"{path}: no PEM certificates ({exc})") from exc
    return certs


def fetch_published(base_url: str) -> list[x509.Certificate]:
    """The CA certificates the koshin service publishes (no actor token needed)."""
    url = f"{base_url.rstrip('/')}/v1/ca/chain"
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        return x509.load_pem_x509_certificates(response.content)
    except (httpx.HTTPError, ValueError) as exc:
        raise ChainUnavailable(f"cannot fetch the CA chain from {url}: {exc}") from exc


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def build_chain(leaf: x509.Certificate, pool: list[x509.Certificate], root: x509.Certificate | None = None) -> Chain:
    """Walk issuer names from ``leaf`` through ``pool`` to a self-signed certificate (or to ``root`` when the
    trust anchor is given separately). Signatures are checked by pyHanko's validator, not here."""
    candidates = [*pool, *([root] if root is not None else [])]
    intermediates: list[x509.Certificate] = []
    current = leaf
    for _ in range(8):
        issuer = next((c for c in candidates if c.subject == current.issuer and c != current), None)
        if issuer is None:
            break
        if _self_signed(issuer):
            if root is not None and issuer != root:
                raise ChainUnavailable(f"the chain ends at {issuer.subject.rfc4514_string()}, not the given root")
            return Chain(tuple(intermediates), issuer)
        intermediates.append(issuer)
        current = issuer
    raise ChainUnavailable(f"no chain from {leaf.subject.rfc4514_string()} to a root in the given certificates")


def published_root(certs: list[x509.Certificate]) -> x509.Certificate:
    roots = [c for c in certs if _self_signed(c)]
    if len(roots) != 1:
        raise ChainUnavailable(f"expected one self-signed root among the CA certificates, found {len(roots)}")
    return roots[0]
