"""The vocabulary of policy requests and decisions. Values are lowercase snake case, as in the regime YAML."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ca.profiles import AssuranceLevel

__all__ = [
    "AssuranceLevel",
    "Channel",
    "Decision",
    "Evidence",
    "HolderState",
    "Operation",
    "PolicyRequest",
    "Role",
]


class Operation(enum.StrEnum):
    """What is asked for. A renewal is a new key and a new certificate, never a re-signed old key."""

    CARD_ISSUE = "card_issue"
    CARD_RENEW = "card_renew"
    CERT_ISSUE = "cert_issue"
    CERT_RENEW = "cert_renew"
    PHONE_CERT_ISSUE = "phone_cert_issue"
    SIGN_PASSWORD_RESET = "sign_password_reset"  # noqa: S105 - an operation name, not a secret
    AUTH_PIN_RESET = "auth_pin_reset"
    OTHER_PIN_RESET = "other_pin_reset"  # 住民基本台帳用 and 券面事項入力補助用 PINs
    REVOKE = "revoke"
    BACK_OFFICE = "back_office"  # 統合端末 issuance/cancellation processing, certificate issue/revoke processing
    CARD_DELIVERY = "card_delivery"


class Channel(enum.StrEnum):
    """Where and how the request is made."""

    COUNTER_IN_PERSON = "counter_in_person"
    POST_OFFICE_IN_PERSON = "post_office_in_person"
    OUTREACH_IN_PERSON = "outreach_in_person"
    KIOSK_FACE_MATCH = "kiosk_face_match"  # phone-app pre-check (chip photo vs live face) + store kiosk
    ONLINE_FACE_MATCH = "online_face_match"  # PC/phone eKYC, unattended
    ONLINE_SIGN_CERT = "online_sign_cert"  # online, authenticated with the card's signature certificate
    RESTRICTED_MAIL = "restricted_mail"  # 本人限定受取郵便
    BACK_OFFICE = "back_office"


class Role(enum.StrEnum):
    """Who acts. ``kiosk`` and ``holder_app`` act for the holder on the kiosk and online channels."""

    MUNICIPAL_STAFF = "municipal_staff"
    FISCAL_YEAR_STAFF = "fiscal_year_staff"  # 会計年度任用職員: still public servants
    POST_OFFICE_STAFF = "post_office_staff"
    OTHER_MUNICIPALITY_STAFF = "other_municipality_staff"
    CONTRACTOR = "contractor"
    KIOSK = "kiosk"
    HOLDER_APP = "holder_app"
    CA_OPERATOR = "ca_operator"
    AUDITOR = "auditor"


class Evidence(enum.StrEnum):
    """What was checked or presented for this request."""

    PHOTO_ID_DOCUMENT = "photo_id_document"
    RESIDENT_REGISTER_MATCH = "resident_register_match"
    FACE_MATCH_CHIP_PHOTO = "face_match_chip_photo"  # IC-chip photo matched against a captured face
    LIVE_FACE_CAPTURE = "live_face_capture"
    SIGN_PASSWORD = "sign_password"  # noqa: S105 - evidence name; the 6-16 character signature password
    AUTH_PIN = "auth_pin"  # 4 digits, user-authentication certificate
    CARD_SIGN_CERTIFICATE = "card_sign_certificate"  # a signature made with the card's valid signature cert
    DEVICE_GENERATED_KEY = "device_generated_key"  # the key pair was generated in the device's chip
    F2F_AT_APPLICATION = "f2f_at_application"  # 申請時来庁方式: face-to-face check done at application
    DERIVED_CERTIFICATE = "derived_certificate"  # a signature made with the phone's current, valid certificate
    ONE_TIME_PASSWORD = "one_time_password"  # noqa: S105 - evidence name; a code sent to the holder's registered contact


@dataclass(frozen=True)
class HolderState:
    """Facts about the holder that rules may test."""

    age: int
    adult_ward: bool = False
    evacuee: bool = False  # Great East Japan Earthquake evacuee living outside the municipality of record
    card_valid: bool = True
    sign_cert_valid: bool = True


@dataclass(frozen=True)
class PolicyRequest:
    operation: Operation
    channel: Channel
    role: Role
    actor_municipality: str | None
    holder_municipality: str | None
    evidence: frozenset[Evidence]
    holder: HolderState
    post_office_delegated: bool = False  # the holder's municipality delegated e-certificate work to the post office
    venue: str | None = None  # e.g. "company_outreach", "wide_area_venue"
    revocation_reason: str | None = None  # revoke: the RFC 5280 reason asked for (camelCase, e.g. keyCompromise)
    infrastructure: bool = False  # revoke: the certificate is a service's (CMP responder, TLS), not a holder's
    holder_bound: bool = False  # the actor is bound to this very holder (a holder app registered to them)

    @property
    def same_municipality(self) -> bool:
        """True only when both municipalities are known and equal; an unknown one is never "the same"."""
        return (
            self.actor_municipality is not None
            and self.holder_municipality is not None
            and self.actor_municipality == self.holder_municipality
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule_id: str
    reason: str
    assurance: AssuranceLevel | None
    policy_oid: str | None
    conditions: tuple[str, ...]
    basis: str
    regime: str
