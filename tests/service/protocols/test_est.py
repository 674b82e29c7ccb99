"""EST (RFC 7030) against the live server, driven with curl and openssl only, as an EST client would.

The holder key is generated on the SoftHSM token and its CSR made with the project's helper; everything on the
wire goes through these commands (``$B`` is the server, ``$L`` an optional CA label):

- ``curl -sS -D h.txt -o cacerts.b64 $B/.well-known/est[/$L]/cacerts`` then
  ``openssl base64 -d -in cacerts.b64 -out cacerts.p7`` and
  ``openssl pkcs7 -inform DER -in cacerts.p7 -print_certs -out cacerts.pem``;
- ``curl ... $B/.well-known/est[/$L]/csrattrs`` then ``openssl asn1parse -inform DER -in csrattrs.der``;
- ``openssl base64 -in csr.der -out csr.b64`` then ``curl --data-binary @csr.b64
  -H 'Content-Type: application/pkcs10' -u "$EVENT:$SECRET" $B/.well-known/est[/$L]/simpleenroll``, the answer
  decoded as above and checked with ``openssl verify -CAfile root.pem -untrusted issuing.pem leaf.pem``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from hsm import KeyAlgorithm, TokenSession
from tests.support.api_world import COUNTER_EVIDENCE, MIYAZAKI
from tests.support.helpers import openssl, run
from tests.support.live_fixture import Live
from tests.support.pki_world import token_csr

EST = "/.well-known/est"
PROBLEM = "application/problem+json"


def curl() -> str:
    path = shutil.which("curl")
    assert path is not None, "curl is required (Debian package curl)"
    return path


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; the last value wins
    body: Path


def fetch(url: str, out: Path, *args: str) -> Answer:
    """curl ``url`` with ``args``; the body lands in ``out``, headers are parsed from curl's -D dump."""
    dump = out.with_suffix(".headers")
    result = run([curl(), "-sS", "-o", str(out), "-D", str(dump), "-w", "%{http_code}", *args, url])
    assert result.returncode == 0, result.stderr
    headers = {}
    for line in dump.read_text(encoding="latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Answer(int(result.stdout), headers, out)


def decode_certs(answer: Answer, directory: Path) -> list[x509.Certificate]:
    """base64 -> DER certs-only PKCS#7 -> PEM certificates, with openssl only."""
    assert answer.status == 200, answer.body.read_text()
    assert answer.headers["content-type"].startswith("application/pkcs7-mime")
    assert answer.headers["content-transfer-encoding"] == "base64"
    der, pem = directory / f"{answer.body.stem}.p7", directory / f"{answer.body.stem}.pem"
    decoded = run([openssl(), "base64", "-d", "-in", str(answer.body), "-out", str(der)])
    assert decoded.returncode == 0, decoded.stderr
    printed = run([openssl(), "pkcs7", "-inform", "DER", "-in", str(der), "-print_certs", "-out", str(pem)])
    assert printed.returncode == 0, printed.stderr
    return x509.load_pem_x509_certificates(pem.read_bytes())


def proofing_event(live: Live) -> tuple[str, str]:
    """A new resident proofed at the counter: (event id, one-time enrollment secret)."""
    number = f"R-{uuid.uuid4().hex[:12]}"
    resident = {"resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
                "municipality": MIYAZAKI, "date_of_birth": "1988-04-12", "sex": "female"}  # fmt: skip
    created = live.client.post("/v1/residents", "municipal_staff", resident)
    assert created.status_code == 201, created.text
    event = live.client.post("/v1/proofing-events", "municipal_staff", {"resident_number": number,
                             "operation": "cert_issue", "channel": "counter_in_person",
                             "evidence": COUNTER_EVIDENCE})  # fmt: skip
    assert event.status_code == 201, event.text
    return str(event.json()["id"]), str(event.json()["enrollment_secret"])


def csr_b64(token: TokenSession, algorithm: KeyAlgorithm, directory: Path) -> tuple[Path, bytes]:
    """The holder's CSR (key on the token) as base64 DER made by ``openssl base64``; also its SPKI."""
    csr = token_csr(token, f"live-est-holder-{algorithm}", algorithm)
    der, b64 = directory / f"csr-{algorithm}.der", directory / f"csr-{algorithm}.b64"
    der.write_bytes(csr.public_bytes(Encoding.DER))
    encoded = run([openssl(), "base64", "-in", str(der), "-out", str(b64)])
    assert encoded.returncode == 0, encoded.stderr
    return b64, csr.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def enroll(live: Live, out: Path, body: Path, user: str, password: str, label: str | None) -> Answer:
    path = f"{EST}/{label}/simpleenroll" if label else f"{EST}/simpleenroll"
    return fetch(f"{live.base_url}{path}", out, "--data-binary", f"@{body}", "-H", "Content-Type: application/pkcs10",
                 "-u", f"{user}:{password}")  # fmt: skip


def problem_of(answer: Answer) -> dict[str, object]:
    assert answer.headers["content-type"] == PROBLEM, answer.headers
    document: dict[str, object] = json.loads(answer.body.read_text())
    assert document["status"] == answer.status
    return document


# -- cacerts and csrattrs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", [None, "user-authentication", "signature"])
def test_cacerts_is_a_base64_certs_only_pkcs7_that_openssl_reads(live: Live, tmp_path: Path, label: str | None) -> None:
    path = f"{EST}/{label}/cacerts" if label else f"{EST}/cacerts"
    certs = decode_certs(fetch(f"{live.base_url}{path}", tmp_path / "cacerts.b64"), tmp_path)
    assert certs == [live.root, live.issuing[label or "user-authentication"]]  # unlabelled = user-authentication


@pytest.mark.parametrize("label", ["tls-server", "nope"])
def test_unknown_or_non_holder_label_is_404(live: Live, tmp_path: Path, label: str) -> None:
    answer = fetch(f"{live.base_url}{EST}/{label}/cacerts", tmp_path / "out")
    assert answer.status == 404 and problem_of(answer)["type"] == "/problems/not-found"


@pytest.mark.parametrize("label", [None, "signature"])
def test_csrattrs_is_base64_der_that_openssl_asn1parse_reads(live: Live, tmp_path: Path, label: str | None) -> None:
    path = f"{EST}/{label}/csrattrs" if label else f"{EST}/csrattrs"
    answer = fetch(f"{live.base_url}{path}", tmp_path / "csrattrs.b64")
    assert answer.status == 200 and answer.headers["content-type"] == "application/csrattrs"
    assert answer.headers["content-transfer-encoding"] == "base64"
    der = tmp_path / "csrattrs.der"
    assert run([openssl(), "base64", "-d", "-in", str(answer.body), "-out", str(der)]).returncode == 0
    parsed = run([openssl(), "asn1parse", "-inform", "DER", "-in", str(der)])
    assert parsed.returncode == 0, parsed.stderr
    for name in ("id-ecPublicKey", "prime256v1", "secp384r1", "ecdsa-with-SHA256", "rsaEncryption",
                 "sha256WithRSAEncryption"):  # fmt: skip
        assert f":{name}" in parsed.stdout, parsed.stdout
    assert "challengePassword" not in parsed.stdout  # authenticated by the one-time secret instead


# -- simpleenroll ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "algorithm"),
    [(None, KeyAlgorithm.P256), ("user-authentication", KeyAlgorithm.RSA2048), ("signature", KeyAlgorithm.P256)],
)
def test_simpleenroll_issues_a_certificate_openssl_verifies(
    live: Live, token: TokenSession, tmp_path: Path, label: str | None, algorithm: KeyAlgorithm
) -> None:
    event_id, secret = proofing_event(live)
    body, spki = csr_b64(token, algorithm, tmp_path)
    certs = decode_certs(enroll(live, tmp_path / "issued.b64", body, event_id, secret, label), tmp_path)
    assert len(certs) == 1
    leaf = certs[0]
    profile = label or "user-authentication"
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    verified = run([openssl(), "verify", "-CAfile", str(live.root_pem), "-untrusted", str(live.issuing_pem[profile]),
                    str(tmp_path / "leaf.pem")])  # fmt: skip
    assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr
    assert leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == spki
    assert leaf.issuer == live.issuing[profile].subject
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value if profile != "signature" else None
    assert eku is None or list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    record = live.client.get(f"/v1/certificates/{leaf.serial_number:x}", "municipal_staff").json()
    assert record["status"] == "issued" and record["certificate_type"] == profile


def test_missing_or_wrong_secret_is_401_with_a_basic_challenge(live: Live, token: TokenSession, tmp_path: Path) -> None:
    event_id, secret = proofing_event(live)
    body, _ = csr_b64(token, KeyAlgorithm.P256, tmp_path)
    url = f"{live.base_url}{EST}/simpleenroll"
    attempts = {
        "none": fetch(url, tmp_path / "none", "--data-binary", f"@{body}"),
        "wrong secret": enroll(live, tmp_path / "wrong", body, event_id, "a" * 26, None),
        "unknown event": enroll(live, tmp_path / "unknown", body, str(uuid.uuid4()), secret, None),
        "bearer": fetch(url, tmp_path / "bearer", "--data-binary", f"@{body}", "-H", f"Authorization: Bearer {secret}"),
    }
    for what, answer in attempts.items():
        assert answer.status == 401, what
        assert answer.headers["www-authenticate"].startswith("Basic "), what
        assert problem_of(answer)["type"] == "/problems/enrollment-secret-invalid", what
    # none of those spent the event: the right secret still enrols once
    assert enroll(live, tmp_path / "ok.b64", body, event_id, secret, None).status == 200


def test_a_used_event_cannot_enrol_again(live: Live, token: TokenSession, tmp_path: Path) -> None:
    event_id, secret = proofing_event(live)
    body, _ = csr_b64(token, KeyAlgorithm.P256, tmp_path)
    assert enroll(live, tmp_path / "first.b64", body, event_id, secret, None).status == 200
    for label in (None, "signature"):
        again = enroll(live, tmp_path / "again", body, event_id, secret, label)
        assert again.status == 409 and problem_of(again)["type"] == "/problems/proofing-event-unusable"


def test_bad_csr_is_400_and_leaves_the_event_usable(live: Live, token: TokenSession, tmp_path: Path) -> None:
    event_id, secret = proofing_event(live)
    not_base64 = tmp_path / "bad.txt"
    not_base64.write_text("this is not base64 DER!\n")
    not_a_csr = tmp_path / "cert.b64"  # well-formed base64 DER, but a certificate, not a PKCS#10 request
    assert run([openssl(), "base64", "-in", str(live.root_pem), "-out", str(not_a_csr)]).returncode == 0
    for body in (not_base64, not_a_csr):
        answer = enroll(live, tmp_path / "bad-answer", body, event_id, secret, "signature")
        assert answer.status == 400 and problem_of(answer)["type"] == "/problems/csr-invalid", body.name
    good, _ = csr_b64(token, KeyAlgorithm.P256, tmp_path)
    assert enroll(live, tmp_path / "ok.b64", good, event_id, secret, "signature").status == 200


def test_a_tls_server_label_cannot_enrol(live: Live, token: TokenSession, tmp_path: Path) -> None:
    event_id, secret = proofing_event(live)
    body, _ = csr_b64(token, KeyAlgorithm.P256, tmp_path)
    answer = enroll(live, tmp_path / "tls", body, event_id, secret, "tls-server")
    assert answer.status == 404 and problem_of(answer)["type"] == "/problems/not-found"


def test_plain_curl_pipeline_from_the_readme(live: Live, token: TokenSession, tmp_path: Path) -> None:
    """The README's one-liner: curl | base64 -d | openssl pkcs7 -print_certs."""
    event_id, secret = proofing_event(live)
    body, _ = csr_b64(token, KeyAlgorithm.P256, tmp_path)
    script = (
        f"curl -sS --fail --data-binary @{body} -H 'Content-Type: application/pkcs10' -u '{event_id}:{secret}' "
        f"{live.base_url}{EST}/signature/simpleenroll | base64 -d | openssl pkcs7 -inform DER -print_certs"
    )
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "BEGIN CERTIFICATE" in result.stdout and "koshin Signature CA" in result.stdout
