"""Example bodies for the OpenAPI document (service/api/openapi.py puts each on its schema): what an integrator
sees first in /docs, and what schemathesis's examples phase sends. The resident, card and event here exist only
in a registry that imported them (README, "A counter renewal, step by step")."""

from __future__ import annotations

from typing import Any

RESIDENT = {
    "resident_number": "EX-0001", "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
    "municipality": "452017", "date_of_birth": "1988-04-12", "sex": "female",
    "cards": [{"number": "EXC0001", "issued_on": "2021-06-01"}],
}  # fmt: skip
EVENT_ID = "6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b"
COUNTER = ["photo_id_document", "resident_register_match"]
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB...\n-----END CERTIFICATE REQUEST-----\n"

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "ResidentIn": [RESIDENT],
    "ResidentPatch": [{"address": "宮崎県宮崎市別府町3番地"}],
    "CardIn": [{"number": "EXC0002", "issued_on": "2026-04-01"}],
    "MunicipalityIn": [{"code": "452017", "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True}],
    "RegistryDocument": [
        {"municipalities": [{"code": "452017", "name": "宮崎市", "prefecture": "宮崎県"}], "residents": [RESIDENT]}
    ],
    "ProofingIn": [
        {"resident_number": "EX-0001", "operation": "card_renew", "channel": "counter_in_person", "evidence": COUNTER}
    ],
    "PolicyEvaluateIn": [
        {
            "operation": "card_renew",
            "channel": "online_face_match",
            "role": "holder_app",
            "evidence": ["auth_pin", "face_match_chip_photo", "live_face_capture"],
            "age": 38,
        }
    ],
    "RevokeIn": [{"reason": "keyCompromise", "channel": "counter_in_person", "evidence": COUNTER}],
    "CertificateIn": [
        {
            "csr_pem": CSR,
            "resident_number": "EX-0001",
            "certificate_type": "signature",
            "proofing_event_id": EVENT_ID,
            "card_number": "EXC0001",
            "key_origin": "station",
        }
    ],
    "CardIssueIn": [
        {
            "resident_number": "EX-0001",
            "proofing_event_id": EVENT_ID,
            "card_number": "EXC0003",
            "signature_csr_pem": CSR,
            "user_authentication_csr_pem": CSR,
            "replaces_card": "EXC0001",
        }
    ],
    "PinResetIn": [{"proofing_event_id": EVENT_ID, "credential": "signature"}],
}
