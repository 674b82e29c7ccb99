"""Request and response bodies. Strict: unknown fields are errors; secrets never appear in a response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, field_validator
from pydantic.config import JsonDict

from service.flows.registry_document import RegistryDate, RegistryText, SexName, Strict, sex_code
from service.flows.serials import SERIAL_PATTERN
from service.policy.model import Channel, Evidence, Operation, Role

ProfileName = Literal["signature", "user-authentication"]
MUNICIPALITY_CODE = r"^[0-9]{5,6}$"
RESIDENT_NUMBER = r"^[0-9A-Za-z-]{4,32}$"  # as the registry document's (service/flows/registry_document.py)
CARD_NUMBER = r"^[0-9A-Z]{4,32}$"
PEM_TEXT = r"^[\n\r\x20-\x7e]*$"  # PEM (RFC 7468) is printable ASCII in lines
BASE64 = r"^[A-Za-z0-9+/]+={0,2}$"


def _pem(kind: str, description: str | None = None) -> JsonDict:
    """The schema of a PEM field: its ``format`` names what it holds (a client's generator or schemathesis's
    hooks can make real ones)."""
    return {"format": kind, **({"description": description} if description else {})}


def _whole(value: object) -> object:
    """A JSON integer: a number with no fraction (30 or 30.0), never a string or a boolean."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_whole)]
CsrPem = Annotated[str, Field(min_length=1, max_length=16_384, pattern=PEM_TEXT, json_schema_extra=_pem("pem-pkcs10"))]
CertificatePem = Annotated[
    str, Field(min_length=1, max_length=16_384, pattern=PEM_TEXT, json_schema_extra=_pem("pem-certificate"))
]
EVENT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # a proofing event's id (a UUID)
ReasonName = Literal[
    "unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation",
    "certificateHold", "privilegeWithdrawn",
]  # fmt: skip


class CardOut(BaseModel):
    number: str
    issued_on: date
    expires_on: date
    status: str
    delivery: str = "counter"


class ResidentPatch(Strict):
    name: RegistryText | None = Field(default=None, min_length=1, max_length=128)
    address: RegistryText | None = Field(default=None, min_length=1, max_length=256)
    municipality: str | None = Field(default=None, pattern=MUNICIPALITY_CODE)
    date_of_birth: RegistryDate | None = None
    sex: SexName | None = None
    adult_ward: StrictBool | None = None
    evacuee: StrictBool | None = None
    stay_limit: RegistryDate | None = None  # a new period of stay; cards issued from now on end at it

    @field_validator("sex", mode="after")
    @classmethod
    def _sex_code(cls, value: object) -> object:
        return None if value is None else sex_code(value)


class ResidentOut(BaseModel):
    resident_number: str
    name: str
    address: str
    municipality: str
    date_of_birth: date
    sex: str
    adult_ward: bool
    evacuee: bool
    stay_limit: date | None = None  # a foreign resident's period of stay: cards and certificates end at it
    cards: list[CardOut]


class ResidentUpdateOut(BaseModel):
    resident: ResidentOut | None = Field(description="null in answers to a holder app: it gets no personal data")
    changed_basic_attributes: list[str]
    revoked_serials: list[str]


class ImportOut(BaseModel):
    municipalities: int
    residents_created: int
    residents_updated: int
    cards_created: int
    revoked_serials: list[str]


# Where an outreach desk stands: the venues the regimes name (profiles/policy/*.yaml, match.venues).
Venue = Literal["company_outreach", "wide_area_venue", "state_large_scale_venue"]

# Evidence the service establishes itself, from a request's signature or a key attestation: never asserted.
VERIFIED_EVIDENCE = frozenset({Evidence.CARD_SIGN_CERTIFICATE, Evidence.DERIVED_CERTIFICATE,
                               Evidence.DEVICE_GENERATED_KEY})  # fmt: skip


ASSERTED_EVIDENCE = sorted(e.value for e in Evidence if e not in VERIFIED_EVIDENCE)
# The schema lists what a caller may assert; the verified kinds are refused in code with a reason of their own.
_ASSERTED: JsonDict = {"items": {"type": "string", "enum": list(ASSERTED_EVIDENCE)}}


def _asserted_only(evidence: list[Evidence]) -> list[Evidence]:
    claimed = sorted(e.value for e in evidence if e in VERIFIED_EVIDENCE)
    if claimed:
        raise ValueError(f"{', '.join(claimed)} cannot be asserted: the service establishes it from the request's "
                         "own signature (phone enrollment, CMP) or the device's key attestation")  # fmt: skip
    return evidence


class ProofingIn(Strict):
    resident_number: str = Field(pattern=RESIDENT_NUMBER)
    operation: Operation
    channel: Channel
    evidence: list[Evidence] = Field(default_factory=list, max_length=16, json_schema_extra=_ASSERTED)
    venue: Venue | None = None

    _verified_evidence = field_validator("evidence")(_asserted_only)


class DecisionOut(BaseModel):
    allowed: bool
    rule_id: str
    reason: str
    assurance_level: str | None
    policy_oid: str | None
    conditions: list[str]
    basis: str
    regime: str


class ProofingOut(BaseModel):
    id: str
    resident_number: str
    operation: str
    channel: str
    evidence: list[str]
    decision: DecisionOut
    created_at: datetime
    expires_at: datetime
    used: bool
    enrollment_secret: str | None = None  # only in the response that creates the event: EST/CMP one-time secret


class PolicyEvaluateIn(Strict):
    operation: Operation
    channel: Channel
    role: Role
    actor_municipality: str | None = Field(default=None, pattern=MUNICIPALITY_CODE)
    holder_municipality: str | None = Field(default=None, pattern=MUNICIPALITY_CODE)
    evidence: list[Evidence] = Field(default_factory=list, max_length=16)
    age: JsonInt = Field(default=30, ge=0, le=150)
    adult_ward: StrictBool = False
    evacuee: StrictBool = False
    card_valid: StrictBool = True
    sign_cert_valid: StrictBool = True
    post_office_delegated: StrictBool = False
    venue: Venue | None = None
    revocation_reason: ReasonName | None = None
    infrastructure: StrictBool = False
    holder_bound: StrictBool = False


class CertificateIn(Strict):
    csr_pem: CsrPem
    resident_number: str = Field(pattern=RESIDENT_NUMBER)
    certificate_type: ProfileName
    proofing_event_id: str = Field(pattern=EVENT_ID)
    card_number: str | None = Field(default=None, pattern=CARD_NUMBER)
    device_id: str | None = Field(default=None, min_length=4, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    replaces_serial: str | None = Field(default=None, pattern=SERIAL_PATTERN, description="hex")
    key_origin: Literal["device", "station", "unknown"] = "unknown"


class CertificateOut(BaseModel):
    serial: str
    certificate_type: str
    issuer: str
    status: str
    subject: str
    not_before: datetime
    not_after: datetime
    assurance_level: str
    key_origin: str
    proofing_event_id: str | None
    replaces_serial: str | None
    revoked_at: datetime | None
    revocation_reason: str | None
    certificate_pem: str | None


class RevokeIn(Strict):
    reason: ReasonName
    channel: Channel | None = Field(default=None, description="where the request is made (default: the role's)")
    evidence: list[Evidence] = Field(
        default_factory=list, max_length=16, description="what was checked", json_schema_extra=_ASSERTED
    )

    _verified_evidence = field_validator("evidence")(_asserted_only)


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    object: str
    rule_id: str | None
    decision: str | None
    details: dict[str, Any]
    hash: str  # SHA-256 of the canonical fields (README, "The audit log")
    leaf_index: int | None  # its place in the Merkle tree; None until the sequencer integrates it
    integrated_at: datetime | None


class ChainOut(BaseModel):
    records: int  # in the tree
    pending: int  # appended, not yet in the tree
    intact: bool
    first_broken: int | None
    problem: str | None
    checkpoints: int  # signed checkpoints verified with the audit key
    anchored_records: int  # records covered by the newest of them


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    token: str
    database: str


class CardIssueIn(Strict):
    """A station's request: one proofing event, the new card, one CSR per certificate type."""

    resident_number: str = Field(pattern=RESIDENT_NUMBER)
    proofing_event_id: str = Field(pattern=EVENT_ID)
    card_number: str = Field(pattern=CARD_NUMBER)
    signature_csr_pem: CsrPem
    user_authentication_csr_pem: CsrPem
    replaces_card: str | None = Field(default=None, pattern=CARD_NUMBER)


class CardIssueOut(BaseModel):
    card: CardOut
    signature: CertificateOut
    user_authentication: CertificateOut
    revoked_serials: list[str]


class CardBatchIn(Strict):
    """A central issuing station's batch: up to 100 card requests, each on its own proofing event."""

    items: list[CardIssueIn] = Field(min_length=1, max_length=100)


class CardBatchItemOut(BaseModel):
    index: int  # the item's place in the request
    status: int  # what the single request would have answered: 201, or its problem's status
    result: CardIssueOut | None = None
    problem: dict[str, Any] | None = None  # the problem document the single request would have answered


class CardBatchOut(BaseModel):
    issued: int
    failed: int
    items: list[CardBatchItemOut]


class NonceOut(BaseModel):
    nonce: str
    expires_at: datetime


_ATTESTATION = (
    "the key attestation the phone's secure element made for this key under the nonce (PEM: the attestation "
    "certificate, then the device's): without a valid one the policy sees no on-device key generation"
)


class PhoneEnrollIn(Strict):
    """A phone's application: its CSRs, and the application signed with the card's signature key."""

    card_certificate_pem: CertificatePem
    device_id: str = Field(min_length=4, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    signature_csr_pem: CsrPem
    user_authentication_csr_pem: CsrPem
    nonce: str = Field(pattern=r"^[0-9a-f]{64}$")
    application_signature_b64: str = Field(min_length=1, max_length=2048, pattern=BASE64)
    signature_attestation_pem: str | None = Field(
        default=None, max_length=16_384, pattern=PEM_TEXT, json_schema_extra=_pem("pem-certificates", _ATTESTATION)
    )
    user_authentication_attestation_pem: str | None = Field(
        default=None, max_length=16_384, pattern=PEM_TEXT, json_schema_extra=_pem("pem-certificates", _ATTESTATION)
    )


class PhoneEnrollOut(BaseModel):
    proofing_event_id: str
    decision_rule_id: str
    assurance_level: str
    signature: CertificateOut
    user_authentication: CertificateOut


class PinResetIn(Strict):
    proofing_event_id: str = Field(pattern=EVENT_ID)
    credential: Literal["signature", "user-authentication"]


class PinResetOut(BaseModel):
    proofing_event_id: str
    credential: str
    rule_id: str
    authorised: bool


class PhoneRenewIn(Strict):
    """Re-key one phone certificate: the new CSR, signed over with the current phone key."""

    current_certificate_pem: CertificatePem
    csr_pem: CsrPem
    nonce: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature_b64: str = Field(min_length=1, max_length=2048, pattern=BASE64)
    attestation_pem: str | None = Field(
        default=None, max_length=16_384, pattern=PEM_TEXT, json_schema_extra=_pem("pem-certificates", _ATTESTATION)
    )
