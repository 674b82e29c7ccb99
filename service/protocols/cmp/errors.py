"""The one error the CMP package raises: a refusal that becomes a CMP ``error`` message with a failInfo bit."""

from __future__ import annotations

from service.errors import ServiceError

FAIL_INFO = (
    "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId", "badDataFormat", "wrongAuthority",
    "incorrectData", "missingTimeStamp", "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
    "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy", "unacceptedExtension", "addInfoNotAvailable",
    "badSenderNonce", "badCertTemplate", "signerNotTrusted", "transactionIdInUse", "unsupportedVersion",
    "notAuthorized", "systemUnavail", "systemFailure", "duplicateCertReq",
)  # fmt: skip


class CmpRejected(ServiceError):
    """A CMP request refused with the RFC 4210 PKIFailureInfo bit ``fail_info`` and a reason for the client."""

    def __init__(self, fail_info: str, text: str) -> None:
        if fail_info not in FAIL_INFO:
            raise ValueError(f"unknown PKIFailureInfo {fail_info!r}")
        self.fail_info, self.text = fail_info, text
        super().__init__(f"{fail_info}: {text}")
