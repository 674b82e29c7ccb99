"""The TLS server credentials of ``koshin serve --tls``: a key generated on the token, and a ``tls-server``
certificate from koshin's own CA, reused across restarts while it still fits.

The private key never leaves the token: the TLS terminator (service/tls/stunnel.py) uses it through the PKCS#11
engine. Only the public certificate chain is written to disk (``KOSHIN_HOME/tls/tls-server.pem``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from ca.extensions import ServerNames
from ca.server import prepare_server_certificate
from hsm import KeyAlgorithm
from service.db.issuance_store import Spend
from service.errors import CertificateNotFound, ConfigurationError
from service.flows.pipeline import PROVISIONING, Order, Plan
from service.runtime import Runtime

PROFILE = "tls-server"
KEY_ALGORITHM = KeyAlgorithm.P256  # ECDHE + ECDSA: the token key only ever signs
# "localhost" is not among them: pkilint's pkix lint refuses a single-label dNSName (invalid_domain_name_syntax),
# and every koshin certificate passes that lint. Clients reach a local server as https://127.0.0.1:PORT.
DEFAULT_NAMES = ("127.0.0.1", "::1")
RENEW_WHEN_LEFT = 1 / 3  # reissue at start-up when less than this share of the lifetime is left


@dataclass(frozen=True)
class TlsCredentials:
    key_uri: str  # RFC 7512 URI of the private key on the token (no PIN in it)
    chain_pem: Path  # the server certificate, then its issuing CA
    certificate: x509.Certificate
    reused: bool


def server_names(extra: Sequence[str] = ()) -> ServerNames:
    """127.0.0.1 and ::1, plus each ``--tls-name`` (an IP address literal or a DNS name with a TLD)."""
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in (*DEFAULT_NAMES, *extra):
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            label = name.strip().lower().rstrip(".")
            if not label or any(not part or len(part) > 63 for part in label.split(".")) or " " in label:
                raise ConfigurationError(f"--tls-name {name!r} is neither an IP address nor a DNS name") from None
            if "." not in label:
                raise ConfigurationError(
                    f"--tls-name {name!r}: a single-label DNS name fails the pre-issuance lint; give an IP address "
                    "or a name with a domain (localhost is served as 127.0.0.1 and ::1)"
                ) from None
            if label not in dns:
                dns.append(label)
            continue
        if address not in ips:
            ips.append(address)
    return ServerNames(dns=tuple(dns), ip=tuple(ips))


def key_label(rt: Runtime) -> str:
    return f"{rt.settings.key_label_prefix}{PROFILE}"


def chain_path(rt: Runtime) -> Path:
    return rt.settings.home / "tls" / f"{PROFILE}.pem"


def names_of(certificate: x509.Certificate) -> set[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def _reusable(rt: Runtime, chain: Path, spki_der: bytes, names: ServerNames, issuer: x509.Certificate) -> bool:
    """The stored certificate is for this token key and these names, from the current CA, still issued (not
    revoked) and has more than a third of its lifetime left."""
    try:
        certificate = x509.load_pem_x509_certificates(chain.read_bytes())[0]
        certificate.verify_directly_issued_by(issuer)
        record = rt.repo.certificate(certificate.serial_number)
    except (OSError, ValueError, IndexError, TypeError, InvalidSignature, CertificateNotFound):
        return False
    now = datetime.now(UTC)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return (
        certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == spki_der
        and names_of(certificate) == {*names.dns, *(str(a) for a in names.ip)}
        and record.status == "issued"
        and certificate.not_valid_after_utc - now > lifetime * RENEW_WHEN_LEFT
    )


def ensure_credentials(rt: Runtime, extra_names: Sequence[str] = ()) -> TlsCredentials:
    """Generate the server key on the token when missing; reuse the stored certificate when it still fits,
    otherwise issue a new one (recorded and audited like every certificate) and write the public chain."""
    names = server_names(extra_names)
    label = key_label(rt)
    if not rt.session.has_key(label):
        rt.session.generate_keypair(KEY_ALGORITHM, label)
    spki_der = rt.session.public_key_der(label)
    profile = rt.profiles.server(PROFILE)
    issuer = x509.load_der_x509_certificate(rt.ca_record(profile.issuer(), "issuing").certificate_der)
    chain = chain_path(rt)
    key_uri = rt.session.key_ref(label).uri()
    if _reusable(rt, chain, spki_der, names, issuer):
        return TlsCredentials(key_uri, chain, x509.load_pem_x509_certificates(chain.read_bytes())[0], reused=True)
    public_key = load_der_public_key(spki_der)
    order = Order(lambda ca: prepare_server_certificate(ca, PROFILE, public_key, names))  # type: ignore[arg-type]
    previous = _replaced(rt, chain)
    issued = rt.pipeline().issue(Plan(PROVISIONING, Spend(), (order,), supersede=previous, channel="provisioning")).only
    chain.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = chain.with_suffix(".pem.new")
    staged.write_bytes(issued.certificate.public_bytes(Encoding.PEM) + issuer.public_bytes(Encoding.PEM))
    staged.replace(chain)
    return TlsCredentials(key_uri, chain, issued.certificate, reused=False)


def rekey(rt: Runtime, extra_names: Sequence[str] = ()) -> TlsCredentials:
    """After the server certificate was revoked: destroy the token key, then make a new key and certificate."""
    if rt.session.has_key(key_label(rt)):
        rt.session.delete_key(key_label(rt))
    return ensure_credentials(rt, extra_names)


def _replaced(rt: Runtime, chain: Path) -> tuple[int, ...]:
    """The stored server certificate, to be revoked (superseded) by the new one when this CA issued it."""
    try:
        serial = x509.load_pem_x509_certificates(chain.read_bytes())[0].serial_number
        record = rt.repo.certificate(serial)
    except (OSError, ValueError, IndexError, CertificateNotFound):
        return ()
    return (serial,) if record.profile == PROFILE else ()
