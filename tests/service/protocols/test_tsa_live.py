"""``POST /tsa`` on the live server, driven by the tools an operator would use: ``openssl ts -query`` piped
into ``curl``, and ``openssl ts -verify`` against the published chain (``GET /v1/ca/chain``) and the TSA
certificate (``GET /ca/tsa.cer``). Refused requests come back as a TimeStampResp with a failure status, as
HTTP 200, never a problem document or a 500."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.tsa import TimeStampFailure
from tests.support.helpers import openssl, run, write_pem
from tests.support.live_fixture import Live

pytestmark = pytest.mark.hsm

TSQ, TSR = "application/timestamp-query", "application/timestamp-reply"
POLICY = "1.3.6.1.5.5.7.13.4"


@pytest.fixture(scope="module")
def files(live: Live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tsa-live")
    chain = live.client.http.get("/v1/ca/chain")
    tsa = live.client.http.get("/ca/tsa.cer")
    assert chain.status_code == 200 and tsa.status_code == 200, (chain.text, tsa.text)
    assert tsa.headers["content-type"] == "application/pkix-cert"
    (out / "chain.pem").write_bytes(chain.content)
    data = out / "document.txt"
    data.write_bytes(b"koshin: a document to time-stamp\n")
    return {"chain": out / "chain.pem", "tsa": write_pem(out / "tsa.pem", x509.load_der_x509_certificate(tsa.content)),
            "data": data, "dir": out}  # fmt: skip


def _curl(live: Live, query: Path, reply: Path, *, media: str = TSQ) -> str:
    """POST with curl as an operator would; returns the response's content type."""
    args = ["curl", "-sS", "--fail", "--data-binary", f"@{query}", "-H", f"Content-Type: {media}",
            "-o", str(reply), "-w", "%{content_type}", f"{live.base_url}/tsa"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def _query(files: dict[str, Path], name: str, *args: str) -> Path:
    path = files["dir"] / f"{name}.tsq"
    made = run([openssl(), "ts", "-query", "-data", str(files["data"]), *args, "-out", str(path)])
    assert made.returncode == 0, made.stderr
    return path


def test_tsa_certificate_is_published(files: dict[str, Path], live: Live) -> None:
    cert = x509.load_pem_x509_certificate(files["tsa"].read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert cert.issuer == live.issuing["signature"].subject


def test_openssl_ts_query_curl_verify(files: dict[str, Path], live: Live) -> None:
    """openssl ts -query -data F -sha256 -cert | curl ... /tsa > r.tsr; openssl ts -verify ... passes."""
    reply = files["dir"] / "r.tsr"
    query = subprocess.Popen(
        [openssl(), "ts", "-query", "-data", str(files["data"]), "-sha256", "-cert"], stdout=subprocess.PIPE
    )
    curl = ["curl", "-sS", "--fail", "--data-binary", "@-", "-H", f"Content-Type: {TSQ}", f"{live.base_url}/tsa"]
    with reply.open("wb") as out:
        posted = subprocess.run(curl, stdin=query.stdout, stdout=out, check=False, timeout=30)
    assert query.wait(timeout=30) == 0 and posted.returncode == 0
    verified = run([openssl(), "ts", "-verify", "-data", str(files["data"]), "-in", str(reply),
                    "-CAfile", str(files["chain"]), "-untrusted", str(files["tsa"])])  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
    text = run([openssl(), "ts", "-reply", "-in", str(reply), "-text"]).stdout
    assert "Status: Granted." in text and f"Policy OID: {POLICY}" in text and "Nonce: 0x" in text, text
    assert "Hash Algorithm: sha256" in text and "TSA: DirName:" in text and "Time-Stamp Authority" in text


def test_the_nonce_is_echoed_and_sha512_accepted(files: dict[str, Path], live: Live) -> None:
    query = _query(files, "nonce", "-sha512", "-tspolicy", POLICY)
    reply = files["dir"] / "nonce.tsr"
    assert _curl(live, query, reply) == TSR
    sent = run([openssl(), "ts", "-query", "-in", str(query), "-text"]).stdout
    got = run([openssl(), "ts", "-reply", "-in", str(reply), "-text"]).stdout
    nonce = next(line for line in sent.splitlines() if line.startswith("Nonce:"))
    assert nonce in got.splitlines(), (sent, got)
    verified = run([openssl(), "ts", "-verify", "-queryfile", str(query), "-in", str(reply), "-CAfile",
                    str(files["chain"]), "-untrusted", str(files["tsa"])])  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(
    ("args", "fail_info"),
    [(["-sha1"], "bad_alg"), (["-md5"], "bad_alg"), (["-sha256", "-tspolicy", "1.2.3.4.5"], "unaccepted_policy")],
    ids=["sha1", "md5", "unknown-policy"],
)
def test_refused_queries_get_a_failure_reply(
    files: dict[str, Path], live: Live, args: list[str], fail_info: str
) -> None:
    reply = files["dir"] / "refused.tsr"
    assert _curl(live, _query(files, "refused", *args), reply) == TSR
    status = TimeStampFailure.load(reply.read_bytes())["status"]
    assert status["status"].native == "rejection" and status["fail_info"].native == {fail_info}
    assert "Status: Rejected." in run([openssl(), "ts", "-reply", "-in", str(reply), "-text"]).stdout


@pytest.mark.parametrize(
    ("body", "media", "fail_info"),
    [(b"not a time-stamp query", TSQ, "bad_data_format"), (b"", TSQ, "bad_data_format"),
     (b"\x30" * 10_000, TSQ, "bad_data_format"), (b"x", "application/octet-stream", "bad_request")],
    ids=["garbage", "empty", "oversized", "wrong-media-type"],
)  # fmt: skip
def test_bad_bodies_get_a_failure_reply(live: Live, body: bytes, media: str, fail_info: str) -> None:
    response = live.client.http.post("/tsa", content=body, headers={"Content-Type": media})
    assert response.status_code == 200 and response.headers["content-type"] == TSR, response.text
    status = TimeStampFailure.load(response.content)["status"]
    assert status["status"].native == "rejection" and status["fail_info"].native == {fail_info}
