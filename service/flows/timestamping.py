"""The time-stamp authority of a running installation: built from its CA records, and added to hierarchies
created before koshin had one (on the next ``koshin init`` or start; idempotent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509

from ca.errors import CaNotInitialised
from ca.hierarchy import TSA_NAME, add_tsa, signing_key
from ca.tsa import TimeStampAuthority

if TYPE_CHECKING:
    from service.runtime import Runtime


def add_missing_tsa(rt: Runtime) -> bool:
    """Certify the TSA the hierarchy declares if the store has none. Returns True when it added one."""
    if rt.profiles.hierarchy.tsa is None or rt.ca_records("tsa"):
        return False
    issuer = rt.ca_record(rt.profiles.hierarchy.tsa.issuer, "issuing")
    material = add_tsa(
        rt.session,
        rt.profiles.hierarchy,
        x509.load_der_x509_certificate(issuer.certificate_der),
        issuer.key_label,
        rt.urls,
        rt.linter,
        label_prefix=rt.settings.key_label_prefix,
    )
    if material is None:
        return False
    rt.repo.save_ca_materials([material])
    return True


def time_stamp_authority(rt: Runtime) -> TimeStampAuthority:
    """The TSA of the stored hierarchy, its key on the token; the issuing CA certificate travels with tokens."""
    spec = rt.profiles.hierarchy.tsa
    if spec is None:
        raise CaNotInitialised("this CA hierarchy declares no time-stamp authority (profiles/hierarchy.yaml: tsa)")
    record = rt.ca_record(TSA_NAME, "tsa")
    certificate = x509.load_der_x509_certificate(record.certificate_der)
    issuers = [x509.load_der_x509_certificate(r.certificate_der) for r in rt.ca_records("issuing")]
    return TimeStampAuthority(
        certificate=certificate,
        key=signing_key(rt.session, record.key_label),
        policy=spec.policy,
        accuracy_seconds=spec.accuracy_seconds,
        chain=tuple(c for c in issuers if c.subject == certificate.issuer),
    )
