"""What a relying party reads from a holder certificate: the JPKI basic attributes in the subjectAltName
otherNames (arc 1.2.392.200149.8.5.5, UTF8String values), and whether the certificate may sign documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

JPKI_ARC = "1.2.392.200149.8.5.5"
_FIELDS = {
    f"{JPKI_ARC}.1": "name",
    f"{JPKI_ARC}.3": "sex",
    f"{JPKI_ARC}.4": "date_of_birth",
    f"{JPKI_ARC}.5": "address",
}
_SEX = {"0": "not known", "1": "male", "2": "female", "9": "not applicable"}  # ISO/IEC 5218
_ERAS = {"1": "Meiji", "2": "Taisho", "3": "Showa", "4": "Heisei", "5": "Reiwa"}  # ca/holder.py jpki_date_of_birth
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning (RFC 9336)
_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
}


@dataclass(frozen=True)
class HolderAttributes:
    """The four basic attributes as the certificate states them (``None``: absent)."""

    name: str | None
    sex: str | None  # the ISO 5218 digit
    date_of_birth: str | None  # the JPKI encoding: era digit + YYYYMMDD
    address: str | None

    @property
    def sex_text(self) -> str | None:
        return None if self.sex is None else f"{self.sex} ({_SEX.get(self.sex, 'invalid code')})"

    @property
    def birth_date(self) -> date | None:
        """The Gregorian date of the JPKI encoding, or ``None`` when absent or malformed."""
        value = self.date_of_birth
        if value is None or len(value) != 9 or not value.isdigit() or value[0] not in _ERAS:
            return None
        try:
            return date(int(value[1:5]), int(value[5:7]), int(value[7:9]))
        except ValueError:
            return None

    @property
    def birth_text(self) -> str | None:
        day = self.birth_date
        if self.date_of_birth is None:
            return None
        if day is None:
            return f"{self.date_of_birth} (not a JPKI date of birth)"
        return f"{day.isoformat()} ({_ERAS[self.date_of_birth[0]]} era; encoded {self.date_of_birth})"

    def as_dict(self) -> dict[str, str | None]:
        day = self.birth_date
        return {"name": self.name, "sex": self.sex, "date_of_birth": day.isoformat() if day else None,
                "date_of_birth_jpki": self.date_of_birth, "address": self.address}  # fmt: skip


def holder_attributes(certificate: x509.Certificate) -> HolderAttributes:
    """Read the JPKI otherNames; a certificate without them (user-authentication) gives all ``None``."""
    found: dict[str, str] = {}
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    for other in san.get_values_for_type(x509.OtherName):
        field = _FIELDS.get(other.type_id.dotted_string)
        if field is not None:
            found[field] = str(UTF8String.load(other.value).native)
    return HolderAttributes(found.get("name"), found.get("sex"), found.get("date_of_birth"), found.get("address"))


def document_signing_problems(certificate: x509.Certificate) -> list[str]:
    """Why the certificate may not sign documents; empty when it may.

    The rule: keyUsage must be present and assert both digitalSignature and nonRepudiation (contentCommitment),
    as the signature profile sets it; and an extendedKeyUsage, if present, must allow document signing
    (id-kp-documentSigning or anyExtendedKeyUsage). The user-authentication profile (digitalSignature only,
    EKU clientAuth) fails both parts: it proves who is at a terminal, not consent to a document."""
    problems: list[str] = []
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        missing = [n for n, on in (("digitalSignature", usage.digital_signature),
                                   ("nonRepudiation", usage.content_commitment)) if not on]  # fmt: skip
        if missing:
            problems.append(f"keyUsage lacks {' and '.join(missing)}")
    except x509.ExtensionNotFound:
        problems.append("no keyUsage extension")
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return problems
    allowed = {DOCUMENT_SIGNING_EKU, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if not allowed & set(eku):
        names = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)
        problems.append(f"extendedKeyUsage limits it to {names}")
    return problems


def describe(certificate: x509.Certificate) -> str:
    return f"certificate {certificate.serial_number:040x} ({certificate.subject.rfc4514_string()})"
