"""Certificate profiles and the CA hierarchy description: data in profiles/, validated here at load.

Unknown keys are errors (``extra="forbid"``); a profile that does not validate stops start-up.
"""

from __future__ import annotations

import enum
import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ca.errors import ProfileInvalid, ProfileNotFound, ProfileViolation
from hsm import KeyAlgorithm

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")

HolderSource = Literal["name", "address", "prefecture", "municipality", "sex", "date_of_birth"]
OpaqueSource = Literal["issuance_id", "opaque_id"]
PERSONAL_SOURCES: frozenset[str] = frozenset(HolderSource.__args__)  # type: ignore[attr-defined]


class AssuranceLevel(enum.StrEnum):
    IAL1 = "IAL1"
    IAL2 = "IAL2"
    IAL3 = "IAL3"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_oid(value: str) -> str:
    if not _OID.match(value):
        raise ValueError(f"{value!r} is not a dotted OID")
    return value


class SubjectAttribute(_Strict):
    attribute: Literal["C", "O", "OU", "L", "ST", "CN"]
    value: str | None = None
    source: HolderSource | OpaqueSource | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SubjectAttribute:
        if (self.value is None) == (self.source is None):
            raise ValueError("a subject attribute needs exactly one of 'value' or 'source'")
        return self


class OtherNameField(_Strict):
    oid: str
    source: HolderSource

    _oid = field_validator("oid")(_check_oid)


KeyUsageName = Literal[
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"
]
ExtendedKeyUsageName = Literal["client_auth", "email_protection", "code_signing", "server_auth"]
# Server profiles may also name id-kp-cmcRA (RFC 6402): the CMP responder's certificate (RFC 9483 section 3.1).
ServerExtendedKeyUsageName = Literal[ExtendedKeyUsageName, "cmc_ra"]


class CertificateProfile(_Strict):
    name: str
    description: str
    issuing_ca: str
    carries_personal_data: bool
    subject: tuple[SubjectAttribute, ...] = Field(min_length=1)
    subject_alt_name: tuple[OtherNameField, ...] = ()
    key_usage: tuple[KeyUsageName, ...] = Field(min_length=1)
    extended_key_usage: tuple[ExtendedKeyUsageName, ...] = ()
    allowed_key_algorithms: tuple[KeyAlgorithm, ...] = Field(min_length=1)
    min_holder_age: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _personal_data_only_where_declared(self) -> CertificateProfile:
        used = {a.source for a in self.subject if a.source} | {o.source for o in self.subject_alt_name}
        if not self.carries_personal_data and used & PERSONAL_SOURCES:
            raise ValueError(
                f"profile {self.name!r} declares no personal data but uses {sorted(used & PERSONAL_SOURCES)}"
            )
        return self


class ServerSubjectAttribute(_Strict):
    attribute: Literal["C", "O", "OU", "CN"]
    value: str | None = None
    source: Literal["server_name"] | None = None  # the first DNS name (else IP address), or the common name

    @model_validator(mode="after")
    def _one_of(self) -> ServerSubjectAttribute:
        if (self.value is None) == (self.source is None):
            raise ValueError("a subject attribute needs exactly one of 'value' or 'source'")
        return self


class ServerProfile(_Strict):
    """A certificate for one of koshin's own servers (``kind: server``): names come from the operator, not
    from a holder record, so a server profile can never be reached by holder issuance, and vice versa.

    ``issuing_ca`` names one CA, or lists several when each of them certifies a server of its own (the CMP
    responder of every issuing CA); the caller then names the one. ``subject_alt_name`` must be stated: an
    empty list means a certificate without the extension, named by its subject CN alone (not for TLS).
    """

    kind: Literal["server"]
    name: str
    description: str
    issuing_ca: str | tuple[str, ...]
    subject: tuple[ServerSubjectAttribute, ...] = Field(min_length=1)
    subject_alt_name: tuple[Literal["dns_name", "ip_address"], ...]
    key_usage: tuple[KeyUsageName, ...] = Field(min_length=1)
    extended_key_usage: tuple[ServerExtendedKeyUsageName, ...] = Field(min_length=1)
    allowed_key_algorithms: tuple[KeyAlgorithm, ...] = Field(min_length=1)
    validity_days: int = Field(gt=0, le=398)  # the CA/Browser Forum ceiling for TLS server certificates

    @model_validator(mode="after")
    def _names(self) -> ServerProfile:
        if not self.issuing_cas or len(set(self.issuing_cas)) != len(self.issuing_cas):
            raise ValueError(f"server profile {self.name!r}: issuing_ca lists no CA or one twice")
        if "server_auth" in self.extended_key_usage and not self.subject_alt_name:
            raise ValueError(f"server profile {self.name!r}: a serverAuth certificate needs subject_alt_name kinds")
        if not self.subject_alt_name and not any(a.attribute == "CN" for a in self.subject):
            raise ValueError(f"server profile {self.name!r}: without subject_alt_name the subject needs a CN")
        return self

    @property
    def issuing_cas(self) -> tuple[str, ...]:
        return (self.issuing_ca,) if isinstance(self.issuing_ca, str) else self.issuing_ca

    def issuer(self, requested: str | None = None) -> str:
        """The issuing CA: ``requested`` when the profile lists it, or the profile's only CA when none is named."""
        if requested is None:
            if len(self.issuing_cas) != 1:
                raise ProfileViolation(f"server profile {self.name!r} is issued by one of {self.issuing_cas}: name it")
            return self.issuing_cas[0]
        if requested not in self.issuing_cas:
            raise ProfileViolation(f"server profile {self.name!r} is not issued by {requested!r}")
        return requested


class CaSpec(_Strict):
    subject: tuple[tuple[Literal["C", "O", "OU", "CN"], str], ...] = Field(min_length=1)
    validity_days: int = Field(gt=0, le=36525)
    path_length: int | None = Field(default=None, ge=0)
    ocsp_validity_days: int | None = Field(default=None, gt=0)
    # Partitioned CRLs (RFC 5280 section 5.2.5): a certificate names shard ``serial mod crl_shards`` in its CRL
    # distribution point. 1: unpartitioned, certificates name the complete CRL. Only grow it: a certificate
    # names its shard for life.
    crl_shards: int = Field(default=1, ge=1, le=1024)


class TsaSpec(_Strict):
    """The RFC 3161 time-stamp authority: certified by one issuing CA, one policy OID, a stated accuracy."""

    issuer: str  # an issuing CA of this hierarchy
    subject: tuple[tuple[Literal["C", "O", "OU", "CN"], str], ...] = Field(min_length=1)
    validity_days: int = Field(gt=0, le=3653)
    policy: str
    accuracy_seconds: int = Field(default=1, ge=1, le=60)

    _policy = field_validator("policy")(_check_oid)


class Hierarchy(_Strict):
    root: CaSpec
    issuing: dict[str, CaSpec] = Field(min_length=1)
    assurance_policies: dict[AssuranceLevel, str]
    crl_validity_hours: int = Field(default=24, gt=0)
    tsa: TsaSpec | None = None  # absent: no time-stamp authority

    @model_validator(mode="after")
    def _tsa_issuer(self) -> Hierarchy:
        if self.tsa is not None and self.tsa.issuer not in self.issuing:
            raise ValueError(f"tsa.issuer {self.tsa.issuer!r} is not an issuing CA of the hierarchy")
        if self.root.crl_shards != 1:
            raise ValueError("root.crl_shards: the root's CRL is not partitioned (it lists CA certificates)")
        return self

    def crl_shards(self, ca: str) -> int:
        """How many CRL shards ``ca`` publishes (1: only the complete CRL; the root and unknown names too)."""
        spec = self.issuing.get(ca)
        return 1 if spec is None else spec.crl_shards

    @field_validator("assurance_policies")
    @classmethod
    def _oids(cls, value: dict[AssuranceLevel, str]) -> dict[AssuranceLevel, str]:
        for oid in value.values():
            _check_oid(oid)
        if set(value) != set(AssuranceLevel):
            raise ValueError("assurance_policies must map every level IAL1..IAL3")
        return value


class ProfileSet(_Strict):
    hierarchy: Hierarchy
    profiles: dict[str, CertificateProfile]  # holder profiles: what issuance on a proofing event may name
    servers: dict[str, ServerProfile] = Field(default_factory=dict)  # koshin's own servers (serve --tls)

    def profile(self, name: str) -> CertificateProfile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ProfileNotFound(f"unknown profile {name!r} (known: {known})") from None

    def server(self, name: str) -> ServerProfile:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(sorted(self.servers)) or "none"
            raise ProfileNotFound(f"unknown server profile {name!r} (known: {known})") from None


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileInvalid(f"{path}: {exc}") from exc


def load_profiles(directory: Path | None = None) -> ProfileSet:
    """Load ``hierarchy.yaml`` and ``certificate/*.yaml`` from ``directory`` (default: the shipped ones)."""
    base = Path(str(resources.files("profiles"))) if directory is None else directory
    try:
        hierarchy = Hierarchy.model_validate(_read_yaml(base / "hierarchy.yaml"))
        profiles: dict[str, CertificateProfile] = {}
        servers: dict[str, ServerProfile] = {}
        for path in sorted((base / "certificate").glob("*.yaml")):
            raw = _read_yaml(path)
            is_server = isinstance(raw, dict) and raw.get("kind") == "server"
            profile = ServerProfile.model_validate(raw) if is_server else CertificateProfile.model_validate(raw)
            if profile.name != path.stem:
                raise ProfileInvalid(f"{path}: name {profile.name!r} differs from the file name")
            cas = profile.issuing_cas if isinstance(profile, ServerProfile) else (profile.issuing_ca,)
            for ca in cas:
                if ca not in hierarchy.issuing:
                    raise ProfileInvalid(f"{path}: issuing_ca {ca!r} is not in hierarchy.yaml")
            if isinstance(profile, ServerProfile):
                servers[profile.name] = profile
            else:
                profiles[profile.name] = profile
    except ValidationError as exc:
        raise ProfileInvalid(str(exc)) from exc
    if not profiles:
        raise ProfileInvalid(f"no certificate profiles in {base / 'certificate'}")
    return ProfileSet(hierarchy=hierarchy, profiles=profiles, servers=servers)
