"""Provisioning: everything a process needs made before it serves, run by ``koshin init`` and at every start
(the service's start-up, and ``koshin serve --workers N`` once before its workers), never inside a request.

In order: the token's enrollment MAC key, the audit key, the CA hierarchy (the key ceremony) or, for an older
hierarchy, its missing time-stamp authority, the CMP responders and the CMP actor, and a first CRL of every CA
that has none (or one that is behind or half expired). Each step keeps what exists and still fits, so a second
run changes nothing.
"""

from __future__ import annotations

from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ca.hierarchy import add_tsa, run_ceremony
from ca.holder import Holder
from ca.issuance import IssueRequest
from ca.profiles import AssuranceLevel
from service.audit.anchor import provision_audit_key
from service.protocols.cmp.renewal import ACTOR_NAME, ACTOR_ROLE
from service.protocols.cmp.responder import provision_responders
from service.runtime import Runtime


def provision(rt: Runtime) -> bool:
    """Make what is missing. Returns True when it created the CA hierarchy."""
    rt.session.hmac_sha256(rt.enrollment_mac_label, b"ready")  # creates the MAC key once, before workers
    provision_audit_key(rt)  # the key that signs audit checkpoints, once; existing installations too
    created = not rt.initialised()
    if created:
        materials = run_ceremony(
            rt.session,
            rt.profiles.hierarchy,
            rt.settings.ca_key_algorithm,
            rt.urls,
            rt.linter,
            label_prefix=rt.settings.key_label_prefix,
        )
        rt.repo.save_ca_materials(materials)
    else:
        add_missing_tsa(rt)  # hierarchies created before koshin had a TSA get one
    provision_responders(rt)  # ... and CMP responder certificates; due ones are renewed
    rt.repo.system_actor(ACTOR_NAME, ACTOR_ROLE)
    rt.crl_publication.publish_due()  # relying parties find a CRL from the first request on
    return created


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


WARM_HOLDER = Holder(name="準備 確認", address="東京都千代田区", prefecture="東京都", municipality="千代田区",
                     date_of_birth=date(1990, 1, 1), sex="9")  # fmt: skip


def warm_up(rt: Runtime) -> None:
    """Prepare (and lint) one certificate of each holder profile for a throwaway key, touching neither the
    token nor the database: the linter builds its per-path index here rather than in a worker's first
    requests (about 300 ms on the first issuance otherwise)."""
    authority = rt.authority()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    for profile in rt.profiles.profiles:
        if "p256" in {a.value for a in rt.profiles.profile(profile).allowed_key_algorithms}:
            authority.prepare(IssueRequest(profile, None, WARM_HOLDER, AssuranceLevel.IAL2, requested_key=key))
