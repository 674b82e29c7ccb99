"""Everything an operator command needs, wired once: token session, database, profiles, the CA core."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.crl import build_crl, reason_flag
from ca.errors import CaNotInitialised
from ca.extensions import CaUrls
from ca.hierarchy import run_ceremony, signing_key
from ca.issuance import CertificateAuthority, IssuingCa
from ca.lint import PkixLinter
from ca.ocsp import CertStatusKind, OcspIssuer, OcspResponder, StatusAnswer
from ca.profiles import ProfileSet, load_profiles
from ca.tsa import TimeStampAuthority
from hsm import TokenSession
from service.audit_anchor import provision_audit_key
from service.bootstrap import token_config
from service.cmp.responder import provision_responders
from service.db.models import CaRecord
from service.db.registry_repo import RegistryRepository
from service.db.repository import make_engine, utc
from service.flows.timestamping import add_missing_tsa, time_stamp_authority
from service.policy.regime import Regime, load_regime
from service.settings import Settings

# A revocation timestamped this long before a CRL's thisUpdate was committed before the CRL read its entries.
_COMMIT_MARGIN = timedelta(seconds=2)


@dataclass
class Runtime:
    settings: Settings
    session: TokenSession
    repo: RegistryRepository
    profiles: ProfileSet
    urls: CaUrls
    _authority: CertificateAuthority | None = field(default=None, init=False)

    def close(self) -> None:
        self.session.close()
        self.repo.engine.dispose()

    @cached_property
    def regime(self) -> Regime:
        """The active assurance-level policy regime (KOSHIN_POLICY), loaded once."""
        directory = self.settings.profiles_dir / "policy" if self.settings.profiles_dir else None
        return load_regime(self.settings.policy, directory)

    @cached_property
    def ocsp(self) -> OcspResponder:
        issuers = []
        for record in self.ca_records("issuing"):
            responder = self.ca_record(record.name, "ocsp")
            issuers.append(
                OcspIssuer(
                    name=record.name,
                    ca_certificate=x509.load_der_x509_certificate(record.certificate_der),
                    responder_certificate=x509.load_der_x509_certificate(responder.certificate_der),
                    responder_key=signing_key(self.session, responder.key_label),
                )
            )
        return OcspResponder(issuers, self._status)

    @cached_property
    def tsa(self) -> TimeStampAuthority:
        """The RFC 3161 time-stamp authority (POST /tsa), its key on the token."""
        return time_stamp_authority(self)

    def _status(self, issuer: str, serial: int) -> StatusAnswer:
        record = self.repo.certificate_status(serial)
        if record is None or record.issuer != issuer or record.status not in ("issued", "revoked"):
            return StatusAnswer(CertStatusKind.UNKNOWN)
        if record.status == "revoked":
            return StatusAnswer(
                CertStatusKind.REVOKED,
                revoked_at=utc(record.revoked_at or record.created_at),
                reason=reason_flag(record.revocation_reason or "unspecified"),
            )
        return StatusAnswer(CertStatusKind.GOOD)

    def current_crl(self, ca_name: str) -> bytes:
        """The newest stored CRL of ``ca_name`` while it is valid; a fresh one otherwise."""
        stored = self.repo.latest_crl(ca_name)
        if stored is not None and utc(stored.next_update) > datetime.now(UTC):
            newest, this_update = self.repo.last_revocation_at(ca_name), utc(stored.this_update)
            if newest is None or newest + _COMMIT_MARGIN < this_update:
                return stored.crl_der
            # Times are whole seconds: a revocation in (about) the CRL's own second may be missing from it.
            listed = len(x509.load_der_x509_crl(stored.crl_der))
            if newest <= this_update and listed == len(self.repo.revoked_entries(ca_name)):
                return stored.crl_der
        return self.crl(ca_name).public_bytes(Encoding.DER)

    @cached_property
    def linter(self) -> PkixLinter | None:
        return PkixLinter() if self.settings.lint else None

    # -- hierarchy ---------------------------------------------------------------------------------------
    def initialised(self) -> bool:
        return bool(self.repo.ca_records())

    @property
    def enrolment_mac_label(self) -> str:
        """The token's generic secret that derives one-time enrolment secrets (service/flows/enrolment.py)."""
        return f"{self.settings.key_label_prefix}enrolment-mac"

    def init_hierarchy(self) -> bool:
        """Run the key ceremony unless the hierarchy exists. Returns True when it created one. Either way, the
        CMP responders (keys and certificates) are provisioned once, before workers start."""
        self.session.hmac_sha256(self.enrolment_mac_label, b"ready")  # creates the MAC key once, before workers
        provision_audit_key(self)  # the key that signs audit checkpoints, once; existing installations too
        if self.initialised():
            add_missing_tsa(self)  # hierarchies created before koshin had a TSA get one
            provision_responders(self)  # ... or a CMP responder certificate; due ones are renewed
            return False
        materials = run_ceremony(
            self.session,
            self.profiles.hierarchy,
            self.settings.ca_key_algorithm,
            self.urls,
            self.linter,
            label_prefix=self.settings.key_label_prefix,
        )
        self.repo.save_ca_materials(materials)
        provision_responders(self)
        return True

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

    # -- issuance and revocation -------------------------------------------------------------------------
    def authority(self) -> CertificateAuthority:
        if self._authority is None:
            issuers = {
                r.name: IssuingCa(
                    r.name,
                    x509.load_der_x509_certificate(r.certificate_der),
                    signing_key(self.session, r.key_label),
                )
                for r in self.ca_records("issuing")
            }
            self._authority = CertificateAuthority(self.profiles, issuers, self.urls, self.linter)
        return self._authority

    def crl(self, ca_name: str) -> x509.CertificateRevocationList:
        """A fresh complete CRL for an issuing CA (or the root), stored and returned."""
        role = "root" if ca_name == "root" else "issuing"
        record = self.ca_record(ca_name, role)
        number = self.repo.next_crl_number(ca_name)
        entries = self.repo.revoked_entries(ca_name) if role == "issuing" else []
        crl = build_crl(
            x509.load_der_x509_certificate(record.certificate_der),
            signing_key(self.session, record.key_label),
            entries,
            number,
            datetime.now(UTC).replace(microsecond=0),
            timedelta(hours=self.profiles.hierarchy.crl_validity_hours),
        )
        self.repo.save_crl(ca_name, number, crl)
        return crl


def open_runtime(settings: Settings, *, create: bool = False) -> Runtime:
    """Open the token and the database. With ``create``, make the embedded token and state directory."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = token_config(settings, create=create)
    profiles = load_profiles(settings.profiles_dir)
    session = TokenSession(config.module_path, config.token_label, config.pin)
    repo = RegistryRepository(make_engine(settings.resolved_database_url))
    return Runtime(settings, session, repo, profiles, CaUrls(settings.public_base_url))
