"""Hostile registry text, CSRs, JSON bodies and paths (collected through tests/security/test_hostile_inputs.py).

Registry text that would reach a certificate is refused with 422 naming the field and the code point
(ca/text.py); a refused CSR leaves its proofing event unspent; nothing is stored by any of them.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.security.hostile_world import PROBLEM, World

BAD_TEXT = [
    ("nul", "宮崎\x00花子", "U+0000"),
    ("rtl-override", "宮崎\u202e花子", "U+202E"),
    ("crlf-escape", "宮崎\r\n\x1b[31m花子", "U+000D"),
    ("noncharacter", "宮崎\uffff", "U+FFFF"),
    ("zwj", "宮\u200d崎", "U+200D"),
    ("bom", "\ufeff宮崎", "U+FEFF"),
    ("dn-injection", "A,CN=Evil Root+O=x", "U+002C"),
    ("emoji", "宮崎😀", "U+1F600"),
    ("c1-control", "宮崎\x85花子", "U+0085"),
    ("isolate", "宮崎\u2066花子", "U+2066"),
    ("hangul", "宮崎 한국", "U+D55C"),
]


def _post_json(world: World, method: str, path: str, who: str, body: Any) -> Any:
    content = json.dumps(body).encode()  # ASCII escapes: every code point arrives as sent
    return world.call(method, path, who, content=content, headers={"content-type": "application/json"})


def _resident_body(**fields: Any) -> dict[str, Any]:
    return {"resident_number": "H-hostile-text", "name": "宮崎 一郎", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": "452017", "date_of_birth": "1970-01-01", "sex": "male", **fields}  # fmt: skip


def _create_resident(world: World, field: str, value: str) -> Any:
    return _post_json(world, "POST", "/v1/residents", "miyazaki_staff", _resident_body(**{field: value}))


def _patch_resident(world: World, field: str, value: str) -> Any:
    return _post_json(world, "PATCH", f"/v1/residents/{world.holders['hanako'].number}", "miyazaki_staff",
                      {field: value})  # fmt: skip


def _import_municipality(world: World, field: str, value: str) -> Any:
    municipality = {"code": "452017", "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True}
    document = {"municipalities": [{**municipality, field: value}], "residents": []}
    return _post_json(world, "POST", "/v1/registry/import", "operator", document)


def _import_resident(world: World, field: str, value: str) -> Any:
    document = {"municipalities": [], "residents": [_resident_body(**{field: value})]}
    return _post_json(world, "POST", "/v1/registry/import", "operator", document)


TARGETS: dict[str, tuple[Callable[[World, str, str], Any], str]] = {
    "create.name": (_create_resident, "name"),
    "create.address": (_create_resident, "address"),
    "patch.name": (_patch_resident, "name"),
    "patch.address": (_patch_resident, "address"),
    "import.municipality-name": (_import_municipality, "name"),
    "import.prefecture": (_import_municipality, "prefecture"),
    "import.resident-name": (_import_resident, "name"),
}
TEXT_CASES = [(t, n, v, p) for t in TARGETS for n, v, p in BAD_TEXT]


def _registry(world: World) -> tuple[Any, ...]:
    resident = world.call("GET", f"/v1/residents/{world.holders['hanako'].number}", "auditor").json()
    absent = world.call("GET", "/v1/residents/H-hostile-text", "auditor").status_code
    municipality = world.api.runtime.repo.municipality("452017")
    return resident["name"], resident["address"], absent, municipality.name, municipality.prefecture


@pytest.mark.parametrize(("target", "case", "value", "code_point"), TEXT_CASES,
                         ids=[f"{t}-{n}" for t, n, _, _ in TEXT_CASES])  # fmt: skip
def test_registry_text_outside_the_repertoire_is_refused(
    world: World, target: str, case: str, value: str, code_point: str
) -> None:
    send, field = TARGETS[target]
    before, registry = world.snapshot(), _registry(world)
    response = send(world, field, value)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM, response.text
    body = response.json()
    assert body["type"] == "/problems/invalid-request", body
    (error,) = body["errors"]
    assert error["loc"][-1] == field and code_point in error["msg"], error
    assert world.snapshot() == before and _registry(world) == registry


def test_registry_text_is_stored_nfc_normalised(world: World) -> None:
    decomposed = "みやざき か\u3099"  # か + combining voiced mark: NFC is が
    response = _post_json(world, "POST", "/v1/residents", "miyazaki_staff",
                          _resident_body(resident_number="H-nfc-check", name=decomposed))  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "みやざき が"


# -- CSRs -----------------------------------------------------------------------------------------------
def _csr(key: Any, algorithm: Any = None) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile")])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, algorithm).public_bytes(Encoding.PEM)


def _openssl_csr(tmp: Path, keygen: list[str], digest: str = "-sha256") -> bytes:
    key = tmp / "key.pem"
    subprocess.run(["openssl", *keygen, "-out", str(key)], check=True, capture_output=True)
    done = subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=hostile", digest],
                          check=True, capture_output=True)  # fmt: skip
    return done.stdout


def _tampered(_: Path) -> bytes:
    csr = x509.load_pem_x509_csr(_csr(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    der = bytearray(csr.public_bytes(Encoding.DER))
    der[-5] ^= 0x01
    armoured = base64.encodebytes(bytes(der))
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + armoured + b"-----END CERTIFICATE REQUEST-----\n"


RSA_KEYGEN = ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
PSS_KEYGEN = ["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]
EXPLICIT_KEYGEN = ["ecparam", "-name", "prime256v1", "-param_enc", "explicit", "-genkey", "-noout"]
EMPTY_PEM = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
SMALL_RSA = 1024  # the hostile input itself
CSRS: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "sha1-signed": (lambda t: _openssl_csr(t, RSA_KEYGEN, "-sha1"), "SHA1"),
    "md5-signed": (lambda t: _openssl_csr(t, RSA_KEYGEN, "-md5"), "MD5"),
    "rsa-pss-key": (lambda t: _openssl_csr(t, PSS_KEYGEN), "RSA-PSS"),
    "explicit-curve": (lambda t: _openssl_csr(t, EXPLICIT_KEYGEN), "explicit curve parameters"),
    "ed25519": (lambda _: _csr(ed25519.Ed25519PrivateKey.generate()), "unsupported key type"),
    "p521": (lambda _: _csr(ec.generate_private_key(ec.SECP521R1()), hashes.SHA256()), "unsupported curve"),
    "rsa-1024": (lambda _: _csr(rsa.generate_private_key(65537, SMALL_RSA), hashes.SHA256()), "too small"),
    "rsa-e3": (lambda _: _csr(rsa.generate_private_key(3, 2048), hashes.SHA256()), "exponent"),
    "bad-signature": (_tampered, "does not verify"),
    "not-a-csr": (lambda _: EMPTY_PEM, "malformed"),
    "garbage": (lambda _: b"\x00\x01\x02 not even PEM", "malformed"),
}
REFUSED_BY_THE_SCHEMA = {"garbage"}  # control characters: outside the PEM text pattern of /openapi.json


@pytest.mark.parametrize("case", sorted(CSRS))
def test_a_refused_csr_spends_nothing(world: World, case: str, tmp_path: Path) -> None:
    make, says = CSRS[case]
    event, hanako = world.event("hanako"), world.holders["hanako"]
    body = {"csr_pem": make(tmp_path).decode("latin-1"), "resident_number": hanako.number, "card_number": hanako.card,
            "certificate_type": "user-authentication", "proofing_event_id": event["id"]}  # fmt: skip
    before = world.snapshot()
    response = world.call("POST", "/v1/certificates", "miyazaki_staff", body)
    if case in REFUSED_BY_THE_SCHEMA:  # not PEM text at all: the schema's own pattern refuses it, 422
        assert response.status_code == 422 and response.json()["type"] == "/problems/invalid-request", response.text
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "csr_pem"]], response.text
    else:
        assert response.status_code == 400 and response.json()["type"] == "/problems/csr-invalid", response.text
        assert says in response.json()["detail"], response.text
    assert world.snapshot() == before
