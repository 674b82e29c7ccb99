"""Signature time-stamps (RFC 3161) in PAdES: the client pyHanko asks (koshin's own TSA at ``{base}/tsa`` by
default), the time a signature's time-stamp token states, and what a relying party is told about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms
from cryptography import x509
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.status import TimestampSignatureStatus

TSA_PATH = "/tsa"
TSA_TIMEOUT = 15.0  # seconds: the token signs in milliseconds; this covers a slow network


def koshin_tsa_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}{TSA_PATH}"


def time_stamper(url: str) -> HTTPTimeStamper:
    return HTTPTimeStamper(url, timeout=TSA_TIMEOUT)


def stated_time(signer_info: cms.SignerInfo) -> datetime | None:
    """genTime of the signature's first time-stamp token, as stated (not yet verified): the moment at which an
    LTV signature's embedded revocation data is judged. pyHanko verifies the token in the same validation, and
    a report whose token does not verify is never valid."""
    try:
        attributes = signer_info["unsigned_attrs"]
        for attribute in attributes if attributes.native is not None else []:
            if attribute["type"].native == "signature_time_stamp_token":
                signed: cms.SignedData = attribute["values"][0]["content"]
                gen_time = signed["encap_content_info"]["content"].parsed["gen_time"].native
                return gen_time if isinstance(gen_time, datetime) else None
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class TimeStampReport:
    """The signature time-stamp: when, by which TSA, and whether it verifies and chains to the trust anchor."""

    time: datetime
    tsa: str
    valid: bool
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "tsa": self.tsa, "valid": self.valid, "problem": self.problem}


def time_stamp_report(status: TimestampSignatureStatus | None) -> TimeStampReport | None:
    if status is None:
        return None
    problem = None
    if not (status.intact and status.valid):
        problem = "the time-stamp token does not match the signature or its own signature is bad"
    elif not status.trusted:
        indication = status.trust_problem_indic
        problem = f"TSA not trusted ({indication.standard_name if indication is not None else 'no path'})"
    return TimeStampReport(
        time=status.timestamp,
        tsa=x509.load_der_x509_certificate(status.signing_cert.dump()).subject.rfc4514_string(),
        valid=problem is None,
        problem=problem,
    )
