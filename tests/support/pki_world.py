"""A CA hierarchy per key algorithm on the session SoftHSM token, with a SQLite store of its own."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.extensions import CaUrls
from ca.hierarchy import CaMaterial, run_ceremony, signing_key
from ca.holder import Holder
from ca.issuance import CertificateAuthority, IssueRequest, IssuingCa
from ca.keyseam import signature_hash, token_private_key
from ca.lint import PkixLinter
from ca.profiles import load_profiles
from hsm import KeyAlgorithm, TokenSession
from service.db.issuance_store import Spend
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine
from service.db.unit import Acting
from service.flows.pipeline import IssuedCertificate, Order, Pipeline, Plan
from tests.support.memo import Memo

URLS = CaUrls("http://127.0.0.1:8000")
HOLDER = Holder(
    name="山田 太郎",
    address="東京都千代田区霞が関二丁目1番2号",
    prefecture="東京都",
    municipality="千代田区",
    date_of_birth=date(1990, 2, 17),
    sex="1",
)


@dataclass
class Pki:
    algorithm: KeyAlgorithm
    materials: list[CaMaterial]
    authority: CertificateAuthority
    repo: RegistryRepository
    chain_pem: Path  # root only: the trust anchor
    untrusted_pem: Path  # issuing CAs

    def material(self, name: str, role: str) -> CaMaterial:
        return next(m for m in self.materials if m.name == name and m.role == role)

    def issue(self, request: IssueRequest) -> IssuedCertificate:
        """Through the issuance pipeline, as an operator issuance (nothing to spend, no publication)."""
        pipeline = Pipeline(self.authority, self.repo, NoPublication())
        return pipeline.issue(Plan(Acting("test", "ca_operator"), Spend(), (Order.holder(request),))).only


class NoPublication:
    def revoked(self, issuers: Iterable[str]) -> None:
        raise AssertionError(f"an operator issuance revoked certificates of {sorted(issuers)}")


@pytest.fixture(scope="session")
def linter() -> PkixLinter:
    return PkixLinter()


@pytest.fixture(scope="session", params=list(KeyAlgorithm), ids=lambda a: str(a))
def pki(
    request: pytest.FixtureRequest, token: TokenSession, linter: PkixLinter, tmp_path_factory: pytest.TempPathFactory
) -> Pki:
    algorithm: KeyAlgorithm = request.param
    memo: Memo = request.getfixturevalue("memo")
    return memo.get(("pki", algorithm), lambda stack: _build_pki(stack, token, linter, tmp_path_factory, algorithm))


def _build_pki(stack: ExitStack, token: TokenSession, linter: PkixLinter, tmp_path_factory: pytest.TempPathFactory,
               algorithm: KeyAlgorithm) -> Pki:  # fmt: skip
    hierarchy = load_profiles().hierarchy
    materials = run_ceremony(token, hierarchy, algorithm, URLS, linter, label_prefix=f"it-{algorithm}-")
    issuers = {
        m.name: IssuingCa(m.name, m.certificate, signing_key(token, m.key_label))
        for m in materials
        if m.role == "issuing"
    }
    directory = tmp_path_factory.mktemp(f"pki-{algorithm}")
    repo = RegistryRepository(make_engine(f"sqlite:///{directory / 'koshin.db'}"))
    stack.callback(repo.engine.dispose)
    repo.save_ca_materials(materials)
    chain, untrusted = directory / "root.pem", directory / "issuing.pem"
    chain.write_bytes(b"".join(m.certificate.public_bytes(Encoding.PEM) for m in materials if m.role == "root"))
    untrusted.write_bytes(b"".join(m.certificate.public_bytes(Encoding.PEM) for m in materials if m.role == "issuing"))
    authority = CertificateAuthority(load_profiles(), issuers, URLS, linter)
    return Pki(algorithm, materials, authority, repo, chain, untrusted)


def token_csr(token: TokenSession, label: str, algorithm: KeyAlgorithm) -> x509.CertificateSigningRequest:
    """A CSR whose key lives on the token (a holder's device, in miniature)."""
    if not token.has_key(label):
        token.generate_keypair(algorithm, label)
    key = token_private_key(token, label)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CSR subject the CA must ignore")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, signature_hash(algorithm))


@pytest.fixture(scope="session")
def holder_csr(token: TokenSession) -> x509.CertificateSigningRequest:
    return token_csr(token, "it-holder-p256", KeyAlgorithm.P256)


@pytest.fixture(scope="session")
def holder_csr_rsa(token: TokenSession) -> x509.CertificateSigningRequest:
    return token_csr(token, "it-holder-rsa2048", KeyAlgorithm.RSA2048)
