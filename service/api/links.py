"""OpenAPI links (service/api/openapi.py): how one answer leads to the next request, so a client generator and
schemathesis's stateful phase can walk a resident → a proofing event → the certificate or card issued on it →
its status → its revocation. Keys: (path, method, status) of the answer; targets by operationId (the route's
function name, app.py)."""

from __future__ import annotations

from typing import Any

_EVENT = {"proofing_event_id": "$response.body#/id", "resident_number": "$response.body#/resident_number"}


def _to(operation: str, description: str, *, parameters: dict[str, str] | None = None,
        body: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    link: dict[str, Any] = {"operationId": operation, "description": description}
    if parameters:
        link["parameters"] = parameters
    if body:
        link["requestBody"] = body
    return link


def _certificate(pointer: str, what: str) -> dict[str, dict[str, Any]]:
    serial = {"serial": f"$response.body#{pointer}"}
    return {
        f"Get{what}": _to("get_certificate", f"the {what}'s record and status", parameters=serial),
        f"Revoke{what}": _to("revoke_certificate", f"revoke the {what}", parameters=serial),
    }


LINKS: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
    ("/v1/residents", "post", "201"): {
        "GetResident": _to(
            "get_resident", "the resident as stored", parameters={"number": "$response.body#/resident_number"}
        ),
        "PatchResident": _to(
            "patch_resident",
            "change the resident's registry fields",
            parameters={"number": "$response.body#/resident_number"},
        ),
        "AddCard": _to(
            "add_card", "register a card for the resident", parameters={"number": "$response.body#/resident_number"}
        ),
        "RecordProofing": _to(
            "create_proofing_event",
            "verify the resident's identity for an operation",
            body={"resident_number": "$response.body#/resident_number"},
        ),
    },
    ("/v1/residents/{number}/cards", "post", "201"): {
        "ReportCardLost": _to("card_lost", "report the card lost", parameters={"number": "$response.body#/number"}),
    },
    ("/v1/proofing-events", "post", "201"): {
        "GetProofingEvent": _to(
            "get_proofing_event", "the event as recorded", parameters={"event_id": "$response.body#/id"}
        ),
        "IssueCertificate": _to("create_certificate", "issue a certificate on the event", body=_EVENT),
        "IssueCard": _to("create_card_issuance", "issue a card's two certificates on the event", body=_EVENT),
    },
    ("/v1/certificates", "post", "201"): _certificate("/serial", "Certificate"),
    ("/v1/certificates/{serial}", "get", "200"): {
        "RevokeCertificate": _to("revoke_certificate", "revoke it", parameters={"serial": "$request.path.serial"}),
    },
    ("/v1/phone-renewals", "post", "201"): _certificate("/serial", "Certificate"),
    ("/v1/card-issuances", "post", "201"): {
        **_certificate("/signature/serial", "SignatureCertificate"),
        **_certificate("/user_authentication/serial", "AuthenticationCertificate"),
        "ReportCardLost": _to(
            "card_lost", "report the new card lost", parameters={"number": "$response.body#/card/number"}
        ),
    },
}
