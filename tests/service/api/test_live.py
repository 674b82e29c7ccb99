"""CRLs and OCSP against a live server (uvicorn on a real port), with openssl as the relying party.

The CA hierarchy is made for the server's own base URL, so the URLs checked are the ones the certificates
carry: the CRL distribution point (``{base}/crl/<ca>/<shard>.crl``), AIA OCSP (``{base}/ocsp/<ca>``) and AIA caIssuers
(``{base}/ca/<ca>.cer``). Certificates are issued and revoked through the HTTP API; the holder key is on the
token. openssl 3.0 invocations used (see also tests/ca/test_ocsp.py):

- ``openssl ocsp -issuer issuing.pem -cert leaf.pem -url <AIA OCSP URL> -CAfile root.pem
  -verify_other issuing.pem -resp_text`` (HTTP POST, with a nonce, which openssl checks);
- the same with ``-serial 0x<serial>`` instead of ``-cert`` for a serial the CA never issued;
- ``openssl ocsp -reqin req.der -respin resp.der -CAfile root.pem -verify_other issuing.pem -resp_text`` for an
  answer fetched with HTTP GET (openssl itself only POSTs);
- ``openssl crl -inform DER -in crl.der -CAfile bundle.pem -noout`` (the CRL's signature) and
  ``openssl verify -crl_check -CAfile root.pem -untrusted issuing.pem -CRLfile crl.pem leaf.pem``.

The server runs on SQLite only: the ``api`` fixture already runs every endpoint on both backends in-process.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from ca.ocsp import cert_id_hashes, ocsp_request_der
from ca.profiles import load_profiles
from tests.support.crl_wait import wait_for_crl
from tests.support.helpers import openssl, run, write_pem
from tests.support.live import write
from tests.support.live_fixture import CAS, Live

OCSP_MEDIA = "application/ocsp-response"
CRL_MEDIA = "application/pkix-crl"
PROBLEM = "application/problem+json"


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _ocsp_uri(leaf: Path) -> str:
    """The AIA OCSP URL as openssl reads it from the certificate."""
    result = run([openssl(), "x509", "-in", str(leaf), "-noout", "-ocsp_uri"])
    assert result.returncode == 0, _output(result)
    return result.stdout.strip()


def _aia(cert: x509.Certificate, method: x509.ObjectIdentifier) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(str(d.access_location.value) for d in aia if d.access_method == method)


def _crl_url(cert: x509.Certificate) -> str:
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    (point,) = points
    assert point.full_name is not None
    (name,) = point.full_name
    assert isinstance(name, x509.UniformResourceIdentifier)
    return name.value


def _openssl_ocsp(live: Live, ca: str, url: str, *target: str) -> str:
    """``openssl ocsp`` POSTing to ``url``; the output once openssl verified the signed answer and its nonce."""
    issuer = str(live.issuing_pem[ca])
    args = ["-issuer", issuer, *target, "-url", url, "-CAfile", str(live.root_pem), "-verify_other", issuer]
    result = run([openssl(), "ocsp", *args, "-resp_text"], timeout=30)
    text = _output(result)
    assert result.returncode == 0, text
    assert "Response verify OK" in text, text
    assert "Nonce Verify error" not in text and "no nonce in response" not in text, text
    return text


def _request_by_serial(issuer: x509.Certificate, serial: int) -> bytes:
    name_hash, key_hash = cert_id_hashes(issuer, "sha1")
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())  # noqa: S303
    return builder.add_extension(x509.OCSPNonce(b"\x3c" * 32), critical=False).build().public_bytes(Encoding.DER)


def _ocsp_get(url: str, request_der: bytes, *, percent_encode: bool = True) -> httpx.Response:
    """RFC 6960 appendix A.1: ``{url}/{url-encoding of base-64 encoding of the DER OCSPRequest}``."""
    encoded = base64.b64encode(request_der).decode()
    path = urllib.parse.quote(encoded, safe="") if percent_encode else encoded
    response = httpx.get(f"{url}/{path}", timeout=30.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCSP_MEDIA
    return response


def _fetch_crl(url: str, tmp_path: Path, name: str) -> tuple[x509.CertificateRevocationList, Path, Path]:
    """The CRL at ``url``: parsed, as fetched (DER), and converted to PEM by openssl."""
    response = httpx.get(url, timeout=30.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CRL_MEDIA
    der = write(tmp_path / f"{name}.der", response.content)
    pem = tmp_path / f"{name}.pem"
    converted = run([openssl(), "crl", "-inform", "DER", "-in", str(der), "-outform", "PEM", "-out", str(pem)])
    assert converted.returncode == 0, _output(converted)
    return x509.load_der_x509_crl(response.content), der, pem


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _verify(live: Live, ca: str, leaf: Path, *crls: Path, check: str = "-crl_check") -> str:
    args = ["-CAfile", str(live.root_pem), "-untrusted", str(live.issuing_pem[ca]), check]
    for crl in crls:
        args += ["-CRLfile", str(crl)]
    result = run([openssl(), "verify", *args, str(leaf)])
    text = _output(result)
    assert (result.returncode == 0) is (f"{leaf}: OK" in text), text
    return text


# -- OCSP over POST with openssl as the client -----------------------------------------------------------------


@pytest.mark.parametrize("ca", CAS)
def test_openssl_ocsp_good_then_revoked_then_unknown(live: Live, tmp_path: Path, ca: str) -> None:
    serial, cert = live.issue(ca)
    leaf = write_pem(tmp_path / "leaf.pem", cert)
    url = _ocsp_uri(leaf)
    assert url == f"{live.base_url}/ocsp/{ca}"
    assert url == _aia(cert, AuthorityInformationAccessOID.OCSP)

    good = _openssl_ocsp(live, ca, url, "-cert", str(leaf))
    assert f"{leaf}: good\n" in good and "Cert Status: good" in good
    assert "Reason:" not in good

    live.client.revoke(serial, "keyCompromise")
    revoked = _openssl_ocsp(live, ca, url, "-cert", str(leaf))
    assert f"{leaf}: revoked\n" in revoked and "Cert Status: revoked" in revoked
    assert "Reason: keyCompromise" in revoked and "Revocation Reason: keyCompromise (0x1)" in revoked

    unknown_serial = f"0x{x509.random_serial_number():x}"
    unknown = _openssl_ocsp(live, ca, f"{live.base_url}/ocsp/{ca}", "-serial", unknown_serial)
    assert f"{unknown_serial}: unknown\n" in unknown and "Cert Status: unknown" in unknown


def test_ca_issuers_url_serves_the_issuer(live: Live) -> None:
    """The AIA caIssuers URL of a leaf serves its issuing CA (DER), which openssl then uses as -issuer."""
    for ca in CAS:
        _, cert = live.issue(ca)
        url = _aia(cert, AuthorityInformationAccessOID.CA_ISSUERS)
        assert url == f"{live.base_url}/ca/{ca}.cer"
        response = httpx.get(url, timeout=30.0)
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-cert"
        assert x509.load_der_x509_certificate(response.content) == live.issuing[ca]
        cert.verify_directly_issued_by(live.issuing[ca])


# -- OCSP over GET, checked by openssl -------------------------------------------------------------------------


def _openssl_check_response(live: Live, ca: str, req: Path, resp: Path, serial: int, status: str) -> None:
    verified = run([openssl(), "ocsp", "-reqin", str(req), "-respin", str(resp), "-CAfile", str(live.root_pem),
                    "-verify_other", str(live.issuing_pem[ca]), "-resp_text"])  # fmt: skip
    text = _output(verified)
    assert verified.returncode == 0, text
    assert "Response verify OK" in text and f"Cert Status: {status}" in text, text
    assert "Nonce Verify error" not in text and "no nonce in response" not in text, text
    issuer = str(live.issuing_pem[ca])
    summary = run([openssl(), "ocsp", "-respin", str(resp), "-CAfile", str(live.root_pem), "-verify_other", issuer,
                   "-issuer", issuer, "-serial", f"0x{serial:x}", "-no_nonce"])  # fmt: skip
    text = _output(summary)
    assert summary.returncode == 0 and "Response verify OK" in text, text
    assert f"0x{serial:x}: {status}\n" in text and "Status times invalid" not in text, text
    assert ("Reason: keyCompromise" in text) is (status == "revoked"), text


def _awkward_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A request (random nonce) whose base64 holds '/' and '+', so the URL encoding matters."""
    for _ in range(200):
        der = ocsp_request_der(cert, issuer)
        if {"/", "+"} <= set(base64.b64encode(der).decode()):
            return der
    raise AssertionError("no request with '/' and '+' in its base64 in 200 tries")


def test_ocsp_get_verified_by_openssl(live: Live, tmp_path: Path) -> None:
    ca = "signature"
    issuer = live.issuing[ca]
    serial, cert = live.issue(ca)
    url = _aia(cert, AuthorityInformationAccessOID.OCSP)
    for status in ("good", "revoked"):
        if status == "revoked":
            live.client.revoke(serial, "keyCompromise")
        for percent_encode in (True, False):
            request_der = _awkward_request(cert, issuer)
            response = _ocsp_get(url, request_der, percent_encode=percent_encode)
            assert "max-age" in response.headers["cache-control"]
            req = write(tmp_path / "req.der", request_der)
            resp = write(tmp_path / "resp.der", response.content)
            _openssl_check_response(live, ca, req, resp, cert.serial_number, status)

    unknown = x509.random_serial_number()
    request_der = _request_by_serial(issuer, unknown)
    response = _ocsp_get(f"{live.base_url}/ocsp/{ca}", request_der)
    req, resp = write(tmp_path / "u-req.der", request_der), write(tmp_path / "u-resp.der", response.content)
    _openssl_check_response(live, ca, req, resp, unknown, "unknown")


def test_ocsp_get_without_base64_padding(live: Live) -> None:
    ca = "user-authentication"
    _, cert = live.issue(ca)
    for _ in range(50):  # a request whose base64 is padded, so that stripping the padding changes it
        request_der = ocsp_request_der(cert, live.issuing[ca])
        if len(request_der) % 3:
            break
    encoded = base64.b64encode(request_der).decode().rstrip("=")
    response = httpx.get(f"{live.base_url}/ocsp/{ca}/{urllib.parse.quote(encoded, safe='')}", timeout=30.0)
    assert response.status_code == 200 and response.headers["content-type"] == OCSP_MEDIA
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == cert.serial_number


def test_ocsp_get_with_url_safe_base64(live: Live) -> None:
    ca = "signature"
    _, cert = live.issue(ca)
    for _ in range(200):  # a request whose base64 needs the characters the two alphabets disagree on
        request_der = ocsp_request_der(cert, live.issuing[ca])
        if {"+", "/"} & set(base64.b64encode(request_der).decode()):
            break
    encoded = base64.urlsafe_b64encode(request_der).decode()
    response = httpx.get(f"{live.base_url}/ocsp/{ca}/{encoded}", timeout=30.0)
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.serial_number == cert.serial_number


# -- CRLs -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ca", CAS)
def test_crl_at_the_distribution_point_regenerated_on_revocation(live: Live, tmp_path: Path, ca: str) -> None:
    (serial_a, cert_a), (serial_b, cert_b) = _same_shard(live, ca)
    leaf_a, leaf_b = write_pem(tmp_path / "a.pem", cert_a), write_pem(tmp_path / "b.pem", cert_b)
    url = _crl_url(cert_a)
    shard = cert_a.serial_number % load_profiles().hierarchy.crl_shards(ca)
    assert url == _crl_url(cert_b) == f"{live.base_url}/crl/{ca}/{shard}.crl"

    before, der, pem = _fetch_crl(url, tmp_path, "before")
    signed = run([openssl(), "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(live.bundle_pem), "-noout"])
    assert signed.returncode == 0 and "verify OK" in _output(signed), _output(signed)
    assert before.issuer == live.issuing[ca].subject
    assert before.is_signature_valid(live.issuing[ca].public_key())  # type: ignore[arg-type]
    assert f"{leaf_a}: OK" in _verify(live, ca, leaf_a, pem) and f"{leaf_b}: OK" in _verify(live, ca, leaf_b, pem)
    # between revocations the same CRL is served
    assert _fetch_crl(url, tmp_path, "again")[0].public_bytes(Encoding.DER) == before.public_bytes(Encoding.DER)

    live.client.revoke(serial_b, "keyCompromise")
    wait_for_crl(lambda: httpx.get(url).content, {cert_b.serial_number}, newer_than=_crl_number(before))
    after_b, der, pem = _fetch_crl(url, tmp_path, "after-b")
    assert _crl_number(after_b) > _crl_number(before)
    entry = after_b.get_revoked_certificate_by_serial_number(cert_b.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    assert after_b.get_revoked_certificate_by_serial_number(cert_a.serial_number) is None
    signed = run([openssl(), "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(live.bundle_pem), "-noout"])
    assert signed.returncode == 0 and "verify OK" in _output(signed), _output(signed)
    assert f"{leaf_a}: OK" in _verify(live, ca, leaf_a, pem)
    refused = _verify(live, ca, leaf_b, pem)
    assert "certificate revoked" in refused and f"{leaf_b}: OK" not in refused

    live.client.revoke(serial_a, "cessationOfOperation")
    wait_for_crl(lambda: httpx.get(url).content, {cert_a.serial_number}, newer_than=_crl_number(after_b))
    after_a, _, pem = _fetch_crl(url, tmp_path, "after-a")
    assert _crl_number(after_a) > _crl_number(after_b)
    assert after_a.get_revoked_certificate_by_serial_number(cert_a.serial_number) is not None
    assert after_a.get_revoked_certificate_by_serial_number(cert_b.serial_number) is not None
    for leaf in (leaf_a, leaf_b):
        assert "certificate revoked" in _verify(live, ca, leaf, pem)
    # the complete CRL (no issuing distribution point) lists them too, for clients that fetch it
    complete_url = f"{live.base_url}/crl/{ca}.crl"
    wait_for_crl(lambda: httpx.get(complete_url).content, {cert_a.serial_number, cert_b.serial_number})
    complete, _, pem = _fetch_crl(complete_url, tmp_path, "complete")
    assert x509.IssuingDistributionPoint.oid not in [e.oid for e in complete.extensions]
    assert "certificate revoked" in _verify(live, ca, leaf_a, pem)


def _same_shard(live: Live, ca: str) -> tuple[tuple[str, x509.Certificate], tuple[str, x509.Certificate]]:
    """Two certificates whose distribution points name the same CRL shard (one of N+1 shares a shard with an
    earlier one)."""
    seen: dict[str, tuple[str, x509.Certificate]] = {}
    for _ in range(load_profiles().hierarchy.crl_shards(ca) + 1):
        serial, cert = live.issue(ca)
        url = _crl_url(cert)
        if url in seen:
            return seen[url], (serial, cert)
        seen[url] = (serial, cert)
    raise AssertionError("more certificates than shards, none sharing one")


def test_root_crl_from_the_issuing_ca_distribution_point(live: Live, tmp_path: Path) -> None:
    """``-crl_check_all``: the leaf against its CA's CRL, the issuing CA against the root's (its own CDP)."""
    ca = "signature"
    _, cert = live.issue(ca)
    leaf = write_pem(tmp_path / "leaf.pem", cert)
    root_url = _crl_url(live.issuing[ca])
    assert root_url == f"{live.base_url}/crl/root.crl"
    root_crl, _, root_pem = _fetch_crl(root_url, tmp_path, "root")
    assert root_crl.issuer == live.root.subject and len(root_crl) == 0
    _, _, issuing_pem = _fetch_crl(_crl_url(cert), tmp_path, "issuing")
    assert f"{leaf}: OK" in _verify(live, ca, leaf, issuing_pem, root_pem, check="-crl_check_all")
    # without the root's CRL openssl cannot finish the check: the test is not vacuous
    incomplete = _verify(live, ca, leaf, issuing_pem, check="-crl_check_all")
    assert "unable to get certificate CRL" in incomplete


# -- errors -----------------------------------------------------------------------------------------------------


def test_unknown_ca_is_a_problem(live: Live) -> None:
    http = live.client.http
    for response in (
        http.get("/crl/nope.crl"),
        http.get("/ca/nope.cer"),
        http.post("/ocsp/nope", content=b"\x30\x00", headers={"content-type": "application/ocsp-request"}),
        http.get("/ocsp/nope/MAA="),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/not-found" and "nope" in response.json()["detail"]


def test_malformed_and_foreign_requests_get_ocsp_errors(live: Live) -> None:
    http, url = live.client.http, "/ocsp/signature"
    headers = {"content-type": "application/ocsp-request"}
    for body in (b"", b"not DER at all", b"\x30\x03\x02\x01\x00"):
        response = http.post(url, content=body, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == OCSP_MEDIA
        answer = ocsp.load_der_ocsp_response(response.content)
        assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    for encoded in ("AAAA", "!!!!", "MAA%3D"):
        response = http.get(f"{url}/{encoded}")
        assert response.status_code == 200 and response.headers["content-type"] == OCSP_MEDIA
        answer = ocsp.load_der_ocsp_response(response.content)
        assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # a CertID of a CA not served here (the root issues no end-entity certificates): unauthorized, unsigned
    foreign = ocsp_request_der(live.issuing["signature"], live.root)
    response = http.post(url, content=foreign, headers=headers)
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_issuing_ca_certificates_publish_only_urls_that_answer(live: Live) -> None:
    """There is no root OCSP responder, so the root-issued CA certificates carry no OCSP URL; their caIssuers
    and CRL distribution point answer."""
    for ca in CAS:
        extensions = live.issuing[ca].extensions
        aia = extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert [d.access_method for d in aia] == [AuthorityInformationAccessOID.CA_ISSUERS]
        issuer_url = str(aia[0].access_location.value)
        fetched = httpx.get(issuer_url, timeout=10)
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/pkix-cert"
        assert x509.load_der_x509_certificate(fetched.content).subject == live.issuing[ca].issuer
        points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        crl_url = str(points[0].full_name[0].value) if points[0].full_name else ""
        assert httpx.get(crl_url, timeout=10).headers["content-type"] == "application/pkix-crl"
