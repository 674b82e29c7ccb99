"""``koshin sample``: the hierarchy at a glance and one sample issuance per profile.

The sample holder's key pair is generated on the token too (label ``<prefix>demo-holder``) and signs its CSR
there, so even the sample never holds a private key in memory.
"""

from __future__ import annotations

from datetime import date

from cryptography import x509
from cryptography.x509.oid import NameOID
from rich.tree import Tree

from ca.holder import Holder
from ca.issuance import IssueRequest
from ca.keyseam import signature_hash, token_private_key
from ca.profiles import AssuranceLevel
from hsm import KeyAlgorithm
from service.cli.context import console, runtime
from service.flows.issuance import issue_for_operator
from service.runtime import Runtime

SAMPLE_HOLDER = Holder(
    name="山田 花子",
    address="宮崎県宮崎市橘通西一丁目1番1号",
    prefecture="宮崎県",
    municipality="宮崎市",
    date_of_birth=date(1988, 4, 12),
    sex="2",  # ISO 5218: female
)


def _common_name(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else cert.subject.rfc4514_string()
    return f"{name} (until {cert.not_valid_after_utc:%Y-%m-%d})"


def _hierarchy_tree(rt: Runtime) -> Tree:
    records = rt.ca_records()
    root = next(r for r in records if r.role == "root")
    tree = Tree(f"[bold]root[/] {_common_name(root.certificate_der)}, key {root.key_label}")
    for issuing in (r for r in records if r.role == "issuing"):
        branch = tree.add(f"[bold]{issuing.name}[/] {_common_name(issuing.certificate_der)}, key {issuing.key_label}")
        for ocsp in (r for r in records if r.role == "ocsp" and r.name == issuing.name):
            branch.add(f"OCSP signer {_common_name(ocsp.certificate_der)}, key {ocsp.key_label}")
    return tree


def sample_csr(rt: Runtime) -> x509.CertificateSigningRequest:
    label = f"{rt.settings.key_label_prefix}demo-holder"
    if not rt.session.has_key(label):
        rt.session.generate_keypair(KeyAlgorithm.RSA2048, label)
    key = token_private_key(rt.session, label)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored: the CA never copies CSR subjects")])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, signature_hash(KeyAlgorithm.RSA2048))


def sample() -> None:
    """Print the CA hierarchy and issue one sample certificate per profile."""
    with runtime() as rt:
        console.print(_hierarchy_tree(rt))
        csr = sample_csr(rt)
        for profile in rt.profiles.profiles:
            issued = issue_for_operator(rt, IssueRequest(profile, csr, SAMPLE_HOLDER, AssuranceLevel.IAL3))
            cert, intent = issued.certificate, issued.intent
            console.print(f"\n[bold]sample {profile}[/] serial {intent.serial:040x}")
            console.print(f"  subject  {cert.subject.rfc4514_string()}")
            console.print(
                f"  valid    {intent.not_before:%Y-%m-%d} .. {intent.not_after:%Y-%m-%d %H:%M:%SZ}"
                f" ({intent.validity_rule})"
            )
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                for other in san.get_values_for_type(x509.OtherName):
                    console.print(f"  SAN      {other.type_id.dotted_string} = {other.value[2:].decode()}")
            except x509.ExtensionNotFound:
                console.print("  SAN      (none: no personal data)")
