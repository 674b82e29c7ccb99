"""The parts of one process, wired once: token session, database, profiles, policy regime, the CA core, the
issuance pipeline, publication. A container, not a service: provisioning lives in service/provisioning.py,
CRL and OCSP publication in service/publication/, issuance in service/flows/pipeline.py. Parts that need the
stored hierarchy are built on first use and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509

from ca.errors import CaNotInitialised
from ca.extensions import CaUrls
from ca.hierarchy import TSA_NAME, signing_key
from ca.issuance import CertificateAuthority, IssuingCa
from ca.lint import PkixLinter
from ca.ocsp import OcspResponder
from ca.profiles import ProfileSet, load_profiles
from ca.tsa import TimeStampAuthority
from hsm import TokenSession
from service.bootstrap import token_config
from service.db.models import CaRecord
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine
from service.flows.pipeline import Pipeline, Publisher
from service.observability.measured import MeasuredLinter
from service.observability.metrics import observe_sign
from service.policy.regime import Regime, load_regime
from service.publication.crl import CrlIssuer, CrlPublication, ImmediatePublisher
from service.publication.ocsp import ocsp_responder
from service.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    session: TokenSession
    repo: RegistryRepository
    profiles: ProfileSet
    urls: CaUrls
    publisher: Publisher | None = None  # the service's background CRL publisher; None: publish immediately
    auth_locks: dict[str, datetime] = field(default_factory=dict)  # source -> locked until (service/flows/lockout.py)
    _authority: CertificateAuthority | None = field(default=None, init=False)
    _maker_roots: tuple[tuple[tuple[str, int], ...], list[x509.Certificate]] | None = field(default=None, init=False)

    def close(self) -> None:
        self.session.close()
        self.repo.engine.dispose()

    @cached_property
    def regime(self) -> Regime:
        """The active assurance-level policy regime (KOSHIN_POLICY), loaded once."""
        directory = self.settings.profiles_dir / "policy" if self.settings.profiles_dir else None
        return load_regime(self.settings.policy, directory)

    @property
    def device_maker_roots(self) -> list[x509.Certificate]:
        """The device makers whose key attestations are trusted: KOSHIN_DEVICE_MAKER_ROOTS and
        ``KOSHIN_HOME/device-makers.pem`` (written by ``koshin devices make --kind maker``); read again only
        when a file changed."""
        paths = [p for p in (self.settings.device_maker_roots, self.settings.home / "device-makers.pem") if p]
        stamp = tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.is_file())
        if self._maker_roots is None or self._maker_roots[0] != stamp:
            roots = [c for name, _ in stamp for c in x509.load_pem_x509_certificates(Path(name).read_bytes())]
            self._maker_roots = (stamp, roots)
        return self._maker_roots[1]

    @cached_property
    def linter(self) -> PkixLinter | None:
        return MeasuredLinter() if self.settings.lint else None

    @property
    def enrollment_mac_label(self) -> str:
        """The token's generic secret that derives one-time enrollment secrets (service/flows/enrollment.py)."""
        return f"{self.settings.key_label_prefix}enrolment-mac"  # the label tokens already hold: kept as spelt

    # -- the stored hierarchy ----------------------------------------------------------------------------
    def initialised(self) -> bool:
        return bool(self.repo.ca_records())

    def ca_records(self, role: str | None = None) -> list[CaRecord]:
        records = self.repo.ca_records()
        if not records:
            raise CaNotInitialised("the CA hierarchy does not exist yet: run `koshin init`")
        return [r for r in records if role is None or r.role == role]

    def ca_record(self, name: str, role: str) -> CaRecord:
        for record in self.ca_records(role):
            if record.name == name:
                return record
        raise CaNotInitialised(f"no {role} CA named {name!r} in this hierarchy")

    def chain(self) -> list[x509.Certificate]:
        """Root first, then the issuing CAs."""
        return [
            x509.load_der_x509_certificate(r.certificate_der)
            for r in self.ca_records()
            if r.role in ("root", "issuing")
        ]

    # -- parts built from it -----------------------------------------------------------------------------
    def authority(self) -> CertificateAuthority:
        if self._authority is None:
            issuers = {
                r.name: IssuingCa(r.name, x509.load_der_x509_certificate(r.certificate_der),
                                  signing_key(self.session, r.key_label))
                for r in self.ca_records("issuing")
            }  # fmt: skip
            self._authority = CertificateAuthority(self.profiles, issuers, self.urls, self.linter)
        return self._authority

    def pipeline(self) -> Pipeline:
        return Pipeline(self.authority(), self.repo, self.crl_publisher())

    def crl_publisher(self) -> Publisher:
        return self.publisher if self.publisher is not None else ImmediatePublisher(self.crl_publication)

    @cached_property
    def crl_publication(self) -> CrlPublication:
        issuers = {
            r.name: CrlIssuer(r.name, x509.load_der_x509_certificate(r.certificate_der),
                              signing_key(self.session, r.key_label), self.profiles.hierarchy.crl_shards(r.name),
                              self.urls)
            for r in self.ca_records() if r.role in ("root", "issuing")
        }  # fmt: skip
        return CrlPublication(self.repo, issuers, timedelta(hours=self.profiles.hierarchy.crl_validity_hours))

    @cached_property
    def ocsp(self) -> OcspResponder:
        return ocsp_responder(self.repo, self.session, self.ca_records())

    @cached_property
    def tsa(self) -> TimeStampAuthority:
        """The RFC 3161 time-stamp authority (POST /tsa), its key on the token."""
        spec = self.profiles.hierarchy.tsa
        if spec is None:
            raise CaNotInitialised("this CA hierarchy declares no time-stamp authority (profiles/hierarchy.yaml: tsa)")
        record = self.ca_record(TSA_NAME, "tsa")
        certificate = x509.load_der_x509_certificate(record.certificate_der)
        issuers = [x509.load_der_x509_certificate(r.certificate_der) for r in self.ca_records("issuing")]
        return TimeStampAuthority(
            certificate=certificate,
            key=signing_key(self.session, record.key_label),
            policy=spec.policy,
            accuracy_seconds=spec.accuracy_seconds,
            chain=tuple(c for c in issuers if c.subject == certificate.issuer),
        )


def open_runtime(settings: Settings, *, create: bool = False) -> Runtime:
    """Open the token and the database. With ``create``, make the embedded token and state directory."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = token_config(settings, create=create)
    profiles = load_profiles(settings.profiles_dir)
    session = TokenSession(config.module_path, config.token_label, config.pin)
    session.sign_observer = observe_sign
    repo = RegistryRepository(make_engine(settings.resolved_database_url))
    return Runtime(settings, session, repo, profiles, CaUrls(settings.public_base_url))
