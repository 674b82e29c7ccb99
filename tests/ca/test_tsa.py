"""The RFC 3161 time-stamp authority of the key ceremony: its certificate (RFC 3161 section 2.3, pkilint), its
token key (koshin's key rule), and its answers checked by ``openssl ts`` for every key algorithm: granted
tokens verify against the root, the policy and nonce are echoed, and refused requests get a failure
TimeStampResp with the right failInfo."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from ca.errors import TsaConfigurationError
from ca.hierarchy import add_tsa, key_label, run_ceremony, signing_key
from ca.profiles import load_profiles
from ca.tsa import TimeStampAuthority, TimeStampFailure
from hsm import KeyAlgorithm, TokenSession
from hsm.key_rules import audit_entry
from service.provisioning import provision
from service.runtime import open_runtime
from service.settings import Settings
from tests.conftest import SoftHsm
from tests.support.helpers import openssl, openssl_verify, pkilint_errors, run, write_pem
from tests.support.pki_world import URLS, Pki

pytestmark = pytest.mark.hsm
POLICY = "1.3.6.1.5.5.7.13.4"


@pytest.fixture
def authority(pki: Pki, token: TokenSession) -> TimeStampAuthority:
    material = pki.material("tsa", "tsa")
    issuer = pki.material("signature", "issuing").certificate
    return TimeStampAuthority(material.certificate, signing_key(token, material.key_label), POLICY, 1, (issuer,))


def _query(tmp_path: Path, data: Path, *args: str) -> Path:
    out = tmp_path / "q.tsq"
    made = run([openssl(), "ts", "-query", "-data", str(data), *args, "-out", str(out)])
    assert made.returncode == 0, made.stderr
    return out


def _reply(tmp_path: Path, authority: TimeStampAuthority, query: bytes) -> Path:
    path = tmp_path / "r.tsr"
    path.write_bytes(authority.respond(query))
    return path


def test_tsa_certificate_follows_rfc3161(pki: Pki, tmp_path: Path) -> None:
    tsa = pki.material("tsa", "tsa")
    assert tsa.key_label == key_label(f"it-{pki.algorithm}-", "tsa", "tsa") == f"it-{pki.algorithm}-tsa"
    cert = tsa.certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.issuer == pki.material("signature", "issuing").certificate.subject
    pem = write_pem(tmp_path / "tsa.pem", cert)
    assert pkilint_errors(pem) == ""
    issuing = write_pem(tmp_path / "issuing.pem", pki.material("signature", "issuing").certificate)
    checked = openssl_verify(pem, pki.chain_pem, issuing, "-purpose", "timestampsign")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_tsa_key_passes_the_key_rule(pki: Pki, token: TokenSession) -> None:
    label = pki.material("tsa", "tsa").key_label
    entries = [audit_entry(info) for info in token.key_objects() if info.label == label]
    private = [e for e in entries if e.key.object_class == "PRIVATE_KEY"]
    assert len(private) == 1 and private[0].violations == ()
    attrs = private[0].key.attributes
    assert attrs["ALWAYS_SENSITIVE"] and attrs["NEVER_EXTRACTABLE"] and attrs["LOCAL"] and not attrs["EXTRACTABLE"]


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_openssl_ts_verifies_the_token(pki: Pki, authority: TimeStampAuthority, tmp_path: Path, digest: str) -> None:
    data = tmp_path / "document.txt"
    data.write_bytes(b"koshin time-stamp test " + digest.encode())
    reply = _reply(tmp_path, authority, _query(tmp_path, data, f"-{digest}", "-cert").read_bytes())
    untrusted = write_pem(tmp_path / "untrusted.pem", authority.certificate, *authority.chain)
    verified = run([openssl(), "ts", "-verify", "-data", str(data), "-in", str(reply), "-CAfile", str(pki.chain_pem),
                    "-untrusted", str(untrusted)])  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
    text = run([openssl(), "ts", "-reply", "-in", str(reply), "-text"]).stdout
    assert "Status: Granted." in text and f"Policy OID: {POLICY}" in text
    assert f"Hash Algorithm: {digest}" in text and "Nonce: 0x" in text and "Accuracy: 0x01 seconds" in text


def test_certificates_only_on_request_and_nonce_echoed(authority: TimeStampAuthority, tmp_path: Path) -> None:
    data = tmp_path / "d.txt"
    data.write_bytes(b"x")
    query = _query(tmp_path, data, "-sha256").read_bytes()  # no -cert: certReq false
    response = tsp.TimeStampResp.load(authority.respond(query))
    signed: cms.SignedData = response["time_stamp_token"]["content"]
    assert signed["certificates"].native is None
    info = signed["encap_content_info"]["content"].parsed
    assert info["nonce"].native == tsp.TimeStampReq.load(query)["nonce"].native
    assert info["policy"].native == POLICY and info["accuracy"]["seconds"].native == 1
    attrs = {a["type"].native for a in signed["signer_infos"][0]["signed_attrs"]}
    assert attrs == {"content_type", "message_digest", "signing_certificate_v2"}
    serials = {tsp.TimeStampResp.load(authority.respond(query))["time_stamp_token"]["content"]["encap_content_info"]
               ["content"].parsed["serial_number"].native for _ in range(5)}  # fmt: skip
    assert len(serials) == 5


@pytest.mark.parametrize(
    ("args", "fail_info", "openssl_text"),
    [
        (["-sha1"], "bad_alg", "unrecognized or unsupported algorithm"),
        (["-sha256", "-tspolicy", "1.2.3.4"], "unaccepted_policy", "requested TSA policy is not supported"),
    ],
    ids=["sha1", "unknown-policy"],
)
def test_refused_requests_get_a_failure_response(
    authority: TimeStampAuthority, tmp_path: Path, args: list[str], fail_info: str, openssl_text: str
) -> None:
    data = tmp_path / "d.txt"
    data.write_bytes(b"y")
    reply = _reply(tmp_path, authority, _query(tmp_path, data, *args).read_bytes())
    status = TimeStampFailure.load(reply.read_bytes())["status"]  # asn1crypto: token required
    assert status["status"].native == "rejection" and status["fail_info"].native == {fail_info}
    text = run([openssl(), "ts", "-reply", "-in", str(reply), "-text"]).stdout
    assert "Status: Rejected." in text and openssl_text in text, text


@pytest.mark.parametrize("body", [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" * 5000], ids=["empty", "text",
                         "truncated", "huge"])  # fmt: skip
def test_garbage_gets_bad_data_format(authority: TimeStampAuthority, body: bytes) -> None:
    status = TimeStampFailure.load(authority.respond(body))["status"]
    assert status["status"].native == "rejection" and status["fail_info"].native == {"bad_data_format"}


def test_a_certificate_without_the_rfc3161_eku_is_refused(pki: Pki, token: TokenSession) -> None:
    ocsp = pki.material("signature", "ocsp")
    with pytest.raises(TsaConfigurationError, match="timeStamping"):
        TimeStampAuthority(ocsp.certificate, signing_key(token, ocsp.key_label), POLICY, 1)


def test_add_tsa_to_an_existing_hierarchy(token: TokenSession) -> None:
    """A hierarchy made before koshin had a TSA gets one; a key left by an interrupted run is certified."""
    full = load_profiles().hierarchy
    old = full.model_copy(update={"tsa": None})
    prefix = "it-tsa-later-"
    materials = run_ceremony(token, old, KeyAlgorithm.P256, URLS, None, label_prefix=prefix)
    assert [m.role for m in materials].count("tsa") == 0
    issuer = next(m for m in materials if m.role == "issuing" and m.name == "signature")
    added = add_tsa(token, full, issuer.certificate, issuer.key_label, URLS, None, label_prefix=prefix)
    assert added is not None and added.key_label == f"{prefix}tsa"
    assert added.certificate.issuer == issuer.certificate.subject
    again = add_tsa(token, full, issuer.certificate, issuer.key_label, URLS, None, label_prefix=prefix)
    assert again is not None and again.certificate.public_key() == added.certificate.public_key()
    assert add_tsa(token, old, issuer.certificate, issuer.key_label, URLS, None, label_prefix=prefix) is None


def test_runtime_adds_a_missing_tsa_on_the_next_init(softhsm: SoftHsm, tmp_path: Path) -> None:
    """An installation created before koshin had a TSA (its hierarchy has none) gets one from the next
    ``koshin init`` or start, once; the TSA then answers."""
    settings = Settings(home=tmp_path, pkcs11_module=softhsm.module, token_label=softhsm.token_label,
                        token_pin=SecretStr(softhsm.pin), database_url=f"sqlite:///{tmp_path / 'koshin.db'}",
                        ca_key_algorithm=KeyAlgorithm.P256, key_label_prefix="it-rt-tsa-")  # fmt: skip
    rt = open_runtime(settings)
    try:
        full = rt.profiles
        rt.profiles = full.model_copy(update={"hierarchy": full.hierarchy.model_copy(update={"tsa": None})})
        assert provision(rt) and rt.ca_records("tsa") == []
        rt.profiles = full
        assert not provision(rt) and len(rt.ca_records("tsa")) == 1
        assert not provision(rt) and len(rt.ca_records("tsa")) == 1
        query = tsp.TimeStampReq({"version": "v1", "nonce": 7, "cert_req": True, "message_imprint": {
            "hash_algorithm": {"algorithm": "sha384"}, "hashed_message": hashlib.sha384(b"doc").digest()}})  # fmt: skip
        response = tsp.TimeStampResp.load(rt.tsa.respond(query.dump()))
        assert response["status"]["status"].native == "granted"
        signed = response["time_stamp_token"]["content"]
        sent = {c.chosen.subject.dump() for c in signed["certificates"]}  # a SET OF: no order
        assert sent == {asn1_x509.Certificate.load(rt.ca_record(name, role).certificate_der).subject.dump()
                        for name, role in (("tsa", "tsa"), ("signature", "issuing"))}  # fmt: skip
    finally:
        rt.close()
