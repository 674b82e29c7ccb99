"""Setup that needs the token, run in child processes: CA hierarchies, holder CSRs, registry data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bench.home import BenchHome
from ca.holder import Holder
from service.provisioning import provision
from service.runtime import open_runtime


def init_hierarchy(params: dict[str, Any]) -> list[str]:
    """``params``: home, algorithm, database_url (optional), prefix. Returns the CA names."""
    home = BenchHome(params["home"])
    settings = home.settings(params["algorithm"], database_url=params.get("database_url"), prefix=params["prefix"])
    rt = open_runtime(settings)
    try:
        provision(rt)
        return [r.name for r in rt.ca_records()]
    finally:
        rt.close()


def holder_csr_pem(algorithm: str = "rsa2048") -> str:
    """A holder CSR signed by a software key (the CA checks it every time; only its key is used)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "p256" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench holder")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.PEM).decode()


BENCH_HOLDER = Holder(
    name="宮崎 花子",
    address="宮崎県宮崎市橘通西一丁目1番1号",
    prefecture="宮崎県",
    municipality="宮崎市",
    date_of_birth=date(1988, 4, 12),
    sex="2",  # ISO 5218: female
)


MIYAZAKI = "452017"


def seed_actors(params: dict[str, Any]) -> dict[str, str]:
    """The municipality of Miyazaki and a counter-staff actor there; returns its API token."""
    home = BenchHome(params["home"])
    settings = home.settings(params["algorithm"], database_url=params.get("database_url"), prefix=params["prefix"])
    rt = open_runtime(settings)
    try:
        provision(rt)
        rt.repo.upsert_municipality(MIYAZAKI, "宮崎市", "宮崎県", True)
        _, staff = rt.repo.add_actor(f"bench-staff-{params.get('tag', '')}", "municipal_staff", MIYAZAKI)
        _, operator = rt.repo.add_actor(f"bench-operator-{params.get('tag', '')}", "ca_operator", None)
        return {"municipal_staff": staff, "ca_operator": operator}
    finally:
        rt.close()


def ca_material(params: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Issuing CA name -> (certificate PEM, token key label)."""
    rt = open_runtime(BenchHome(params["home"]).settings(params["algorithm"]))
    try:
        return {
            r.name: (x509.load_der_x509_certificate(r.certificate_der).public_bytes(Encoding.PEM).decode(), r.key_label)
            for r in rt.ca_records("issuing")
        }
    finally:
        rt.close()


def verify_audit(params: dict[str, Any]) -> tuple[bool, int, str | None]:
    """Recompute the audit log of a bench database: (intact, records, problem)."""
    home = BenchHome(params["home"])
    settings = home.settings(params["algorithm"], database_url=params.get("database_url"), prefix=params["prefix"])
    rt = open_runtime(settings)
    try:
        report = rt.repo.verify_audit()
        return report.intact, report.records, report.problem
    finally:
        rt.close()


def integration_delays(params: dict[str, Any]) -> list[float]:
    """Seconds from append to integration into the audit tree of the records appended since ``since``."""
    home = BenchHome(params["home"])
    settings = home.settings(params["algorithm"], database_url=params.get("database_url"), prefix=params["prefix"])
    rt = open_runtime(settings)
    try:
        return rt.repo.integration_delays(datetime.fromisoformat(params["since"]))
    finally:
        rt.close()
