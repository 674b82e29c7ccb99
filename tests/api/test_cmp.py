"""CMP (RFC 4210/9480 over RFC 6712 HTTP) against the live server, driven by `openssl cmp` with the holder's keys
on a SoftHSM token through OpenSSL's pkcs11 engine; results checked with `openssl verify` and `openssl ocsp`.

Requests that openssl cannot be made to send (tampered, replayed) are taken from `openssl cmp -reqout` aimed at
a closed port, altered or re-sent with httpx, and the answer decoded with pyasn1.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import sqlite3
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc9480
from pydantic import SecretStr

from ca.errors import CaNotInitialised
from ca.extensions import ServerNames
from ca.server import prepare_server_certificate
from hsm import KeyAlgorithm
from service.cmp.messages import protected_part
from service.cmp.protection import PbmParameters
from service.cmp.responder import PROFILE, key_label, provision_responders, responder
from service.db.models import CertificateRecord
from service.protocol import application_bytes
from service.runtime import Runtime, open_runtime
from service.settings import Settings
from tests.api.cmp_tools import HolderToken
from tests.api.conftest import COUNTER_EVIDENCE, MIYAZAKI, make_runtime
from tests.api.live_fixture import CAS, Live
from tests.conftest import SoftHsm, require_softhsm
from tests.integration.helpers import openssl, openssl_verify, pkilint_errors, run
from tests.integration.test_cli import KOSHIN, Cli

pytestmark = pytest.mark.hsm
CMP_MEDIA = "application/pkixcmp"


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> HolderToken:
    return HolderToken.create(tmp_path_factory.mktemp("cmp-holder"))


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _resident(live: Live) -> tuple[str, str]:
    card = f"C{uuid.uuid4().hex[:12].upper()}"
    number = f"R-{uuid.uuid4().hex[:12]}"
    body = {"resident_number": number, "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": MIYAZAKI, "date_of_birth": "1988-04-12", "sex": "female",
            "cards": [{"number": card, "issued_on": "2021-06-01"}]}  # fmt: skip
    created = live.client.post("/v1/residents", "municipal_staff", body)
    assert created.status_code == 201, created.text
    return number, card


def _proofing(live: Live, number: str) -> tuple[str, str]:
    """A counter proofing event (cert_issue, P1-CERT): its id and its one-time enrolment secret."""
    event = live.client.post("/v1/proofing-events", "municipal_staff", {"resident_number": number,
                             "operation": "cert_issue", "channel": "counter_in_person",
                             "evidence": COUNTER_EVIDENCE})  # fmt: skip
    assert event.status_code == 201, event.text
    return str(event.json()["id"]), str(event.json()["enrolment_secret"])


def _ir_args(event_id: str, secret: str, key_uri: str, out: Path, root: Path) -> list[str]:
    return ["-cmd", "ir", "-ref", event_id, "-secret", f"pass:{secret}", "-newkey", key_uri,
            "-subject", "/CN=holder", "-certout", str(out), "-trusted", str(root)]  # fmt: skip


def _ocsp(live: Live, ca: str, leaf: Path) -> str:
    issuer = str(live.issuing_pem[ca])
    result = run([openssl(), "ocsp", "-issuer", issuer, "-cert", str(leaf), "-url", f"{live.base_url}/ocsp/{ca}",
                  "-CAfile", str(live.root_pem), "-verify_other", issuer, "-resp_text"], timeout=30)  # fmt: skip
    assert result.returncode == 0 and "Response verify OK" in _output(result), _output(result)
    return _output(result)


def _verified(live: Live, ca: str, leaf: Path) -> x509.Certificate:
    result = openssl_verify(leaf, live.root_pem, live.issuing_pem[ca])
    assert result.returncode == 0 and f"{leaf}: OK" in result.stdout, _output(result)
    return x509.load_pem_x509_certificate(leaf.read_bytes())


def _enrolled(
    live: Live, holder: HolderToken, tmp_path: Path, ca: str = "signature", key_type: str = "EC:prime256v1"
) -> tuple[Path, str]:
    """A certificate issued over CMP ir for a new key on the holder token: its PEM path and key URI."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"ir-{uuid.uuid4().hex[:8]}", key_type)
    out = tmp_path / f"ir-{ca}.pem"
    result = holder.cmp(live.base_url, ca, *_ir_args(event_id, secret, key, out, live.root_pem))
    assert result.returncode == 0, _output(result)
    return out, key


# -- ir + certConf --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ca", "key_type"),
    [("signature", "EC:prime256v1"), ("signature", "rsa:2048"), ("user-authentication", "EC:secp384r1"),
     ("user-authentication", "rsa:3072")],
)  # fmt: skip
def test_ir_with_the_one_time_secret(live: Live, holder: HolderToken, tmp_path: Path, ca: str, key_type: str) -> None:
    leaf, _ = _enrolled(live, holder, tmp_path, ca, key_type)
    certificate = _verified(live, ca, leaf)
    assert "Cert Status: good" in _ocsp(live, ca, leaf)
    record = live.runtime.repo.certificate(certificate.serial_number)
    assert record.status == "issued" and record.profile == ca
    assert certificate.subject.rfc4514_string() != "CN=holder"  # the profile names the subject, not the client


@pytest.mark.parametrize("infotype", [("-infotype", "caCerts"), ()], ids=["caCerts", "default"])
def test_genm_returns_the_ca_certificates(live: Live, holder: HolderToken, infotype: tuple[str, ...]) -> None:
    """openssl 3.0 `-cmd genm` (unprotected: CA certificates are public) gets id-it-caCerts, also by default."""
    result = holder.cmp(live.base_url, "signature", "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x",
                        "-trusted", str(live.root_pem), *infotype)  # fmt: skip
    assert result.returncode == 0, _output(result)
    assert "received GENP" in _output(result) and "genp contains ITAV of type: id-it-caCerts" in _output(result)


# -- kur: the phone re-key in a standard protocol ------------------------------------------------------------
def _phone(live: Live, holder: HolderToken, tmp_path: Path) -> tuple[Path, str]:
    """A phone signature certificate (REST enrolment, policy P11) for a key on the holder token."""
    number, card = _resident(live)
    card_key = ec.generate_private_key(ec.SECP256R1())  # the card's signature key (software: not under test)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(card_key, hashes.SHA256())
    event_id, _ = _proofing(live, number)
    issued = live.client.post("/v1/certificates", "municipal_staff", {"resident_number": number,
                              "certificate_type": "signature", "proofing_event_id": event_id, "card_number": card,
                              "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode()})  # fmt: skip
    assert issued.status_code == 201, issued.text
    if "holder_app" not in live.client.tokens:
        live.client.tokens["holder_app"] = live.runtime.repo.add_actor("cmp-phone-app", "holder_app", None)[1]
    tag = uuid.uuid4().hex[:8]
    keys = {p: holder.new_key(f"phone-{tag}-{p}") for p in ("signature", "user-authentication")}
    csrs = {p: holder.csr(uri, tmp_path / f"phone-{p}.csr").read_bytes() for p, uri in keys.items()}
    nonce = live.client.post("/v1/phone-enrollments/nonce", "holder_app").json()["nonce"]
    signature = card_key.sign(application_bytes(nonce, f"phone-{tag}", csrs), ec.ECDSA(hashes.SHA256()))
    enrolled = live.client.post("/v1/phone-enrollments", "holder_app", {
        "card_certificate_pem": issued.json()["certificate_pem"], "device_id": f"phone-{tag}",
        "signature_csr_pem": csrs["signature"].decode(),
        "user_authentication_csr_pem": csrs["user-authentication"].decode(),
        "nonce": nonce, "application_signature_b64": base64.b64encode(signature).decode()})  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    path = tmp_path / "phone-signature.pem"
    path.write_text(enrolled.json()["signature"]["certificate_pem"])
    return path, keys["signature"]


def _kur(live: Live, holder: HolderToken, cert: Path, key: str, out: Path) -> subprocess.CompletedProcess[str]:
    new_key = holder.new_key(f"kur-{uuid.uuid4().hex[:8]}")
    return holder.cmp(live.base_url, "signature", "-cmd", "kur", "-cert", str(cert), "-key", key, "-newkey", new_key,
                      "-certout", str(out), "-trusted", str(live.root_pem))  # fmt: skip


def test_kur_rekeys_a_phone_certificate_and_supersedes_it(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    current, key = _phone(live, holder, tmp_path)
    renewed = tmp_path / "renewed.pem"
    result = _kur(live, holder, current, key, renewed)
    assert result.returncode == 0, _output(result)
    new = _verified(live, "signature", renewed)
    old = x509.load_pem_x509_certificate(current.read_bytes())
    assert new.public_key() != old.public_key()
    record = live.runtime.repo.certificate(new.serial_number)
    assert record.replaces_serial == f"{old.serial_number:040x}" and record.key_origin == "device"
    assert live.runtime.repo.proofing_event(record.proofing_event_id or "").rule_id == "P11-REKEY"
    assert "Cert Status: good" in _ocsp(live, "signature", renewed)
    superseded = _ocsp(live, "signature", current)
    assert "Cert Status: revoked" in superseded and "Reason: superseded" in superseded

    again = _kur(live, holder, current, key, tmp_path / "again.pem")  # the superseded certificate is spent
    assert again.returncode != 0 and "certRevoked" in _output(again), _output(again)


def test_kur_of_a_card_certificate_is_refused_by_the_policy(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    """current-2022 P12/P6: no online renewal of a card-style certificate; the error names notAuthorized."""
    leaf, key = _enrolled(live, holder, tmp_path)
    result = _kur(live, holder, leaf, key, tmp_path / "refused.pem")
    assert result.returncode != 0 and "notAuthorized" in _output(result), _output(result)
    assert "P12" in _output(result) or "P6" in _output(result), _output(result)


# -- rr ------------------------------------------------------------------------------------------------------
def test_rr_signed_by_the_certificate_key_revokes_it(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    leaf, key = _enrolled(live, holder, tmp_path)
    result = holder.cmp(live.base_url, "signature", "-cmd", "rr", "-oldcert", str(leaf), "-cert", str(leaf),
                        "-key", key, "-revreason", "1", "-trusted", str(live.root_pem))  # fmt: skip
    assert result.returncode == 0, _output(result)
    status = _ocsp(live, "signature", leaf)
    assert "Cert Status: revoked" in status and "keyCompromise" in status, status

    again = holder.cmp(live.base_url, "signature", "-cmd", "rr", "-oldcert", str(leaf), "-cert", str(leaf),
                       "-key", key, "-trusted", str(live.root_pem))  # fmt: skip
    assert again.returncode != 0 and "certRevoked" in _output(again), _output(again)


# -- refusals ------------------------------------------------------------------------------------------------
def test_ir_with_a_wrong_secret_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    wrong = "a" * len(secret) if secret != "a" * len(secret) else "b" * len(secret)
    key = holder.new_key(f"wrong-{uuid.uuid4().hex[:8]}")
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, wrong, key, tmp_path / "x.pem", live.root_pem))
    assert result.returncode != 0 and "badMessageCheck" in _output(result), _output(result)
    assert live.runtime.repo.proofing_event(event_id).used_at is None  # the event is not spent


def _unsent_ir(live: Live, holder: HolderToken, tmp_path: Path) -> tuple[bytes, str]:
    """A valid ir that openssl wrote (-reqout) but could not send (a closed port), and its secret."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"unsent-{uuid.uuid4().hex[:8]}")
    request = tmp_path / "ir.der"
    closed = holder.cmp("http://127.0.0.1:9", "signature", *_ir_args(event_id, secret, key, tmp_path / "x.pem",
                        live.root_pem), "-reqout", str(request))  # fmt: skip
    assert closed.returncode != 0 and request.exists(), _output(closed)
    return request.read_bytes(), secret


def _post(live: Live, der: bytes, profile: str = "signature") -> tuple[str, str]:
    """POST a PKIMessage; the answer's body type and, for an error, its failInfo bit names."""
    response = httpx.post(f"{live.base_url}/.well-known/cmp/p/{profile}", content=der,
                          headers={"Content-Type": CMP_MEDIA}, timeout=30)  # fmt: skip
    assert response.status_code == 200 and response.headers["content-type"] == CMP_MEDIA, response.text
    message, _ = decoder.decode(response.content, asn1Spec=rfc9480.PKIMessage())
    kind = message["body"].getName()
    if kind != "error":
        return kind, ""
    info = message["body"]["error"]["pKIStatusInfo"]
    bits = [i for i, bit in enumerate(info["failInfo"]) if bit]
    names = [rfc9480.PKIFailureInfo.namedValues.getName(i) for i in bits]
    return kind, ",".join(str(n) for n in names)


def test_a_tampered_ir_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    der = bytearray(_unsent_ir(live, holder, tmp_path)[0])
    message, _ = decoder.decode(bytes(der), asn1Spec=rfc9480.PKIMessage())
    public_key = message["body"]["ir"][0]["certReq"]["certTemplate"]["publicKey"]["subjectPublicKey"].asOctets()
    at = bytes(der).index(public_key) + 10
    der[at] ^= 0x01  # one bit of the requested key
    assert _post(live, bytes(der)) == ("error", "badMessageCheck")


def test_a_replayed_transaction_id_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    der, _ = _unsent_ir(live, holder, tmp_path)
    assert _post(live, der) == ("ip", "")
    assert _post(live, der) == ("error", "transactionIdInUse")


def test_garbage_gets_a_cmp_error(live: Live) -> None:
    assert _post(live, b"not a PKIMessage") == ("error", "badDataFormat")


def test_a_wrong_proof_of_possession_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    """A correctly MAC-protected ir whose POP signature does not verify with the requested key: badPOP."""
    der, secret = _unsent_ir(live, holder, tmp_path)
    signature = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())[0]["body"]["ir"][0]["popo"]["signature"]
    at = der.index(signature["signature"].asOctets()) + 12
    tampered = bytearray(der)
    tampered[at] ^= 0x01  # a bit of the POP signature
    message, _ = decoder.decode(bytes(tampered), asn1Spec=rfc9480.PKIMessage())
    params, _ = PbmParameters.of(message["header"]["protectionAlg"])
    salt = bytes(decoder.decode(bytes(message["header"]["protectionAlg"]["parameters"]),
                                asn1Spec=rfc9480.PBMParameter())[0]["salt"])  # fmt: skip
    mac = params.mac(secret.encode(), salt, protected_part(message))
    message["protection"] = message["protection"].clone(univ.BitString.fromOctetString(mac))
    assert _post(live, encoder.encode(message)) == ("error", "badPOP")


def test_implicit_confirmation_is_granted(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"implicit-{uuid.uuid4().hex[:8]}")
    out = tmp_path / "implicit.pem"
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, out, live.root_pem),
                        "-implicit_confirm")  # fmt: skip
    assert result.returncode == 0, _output(result)
    assert "sending CERTCONF" not in _output(result), _output(result)
    _verified(live, "signature", out)


def test_an_unknown_profile_gets_a_cmp_error(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    der, _ = _unsent_ir(live, holder, tmp_path)
    assert _post(live, der, "no-such-profile") == ("error", "badRequest")


def test_ir_still_runs_the_key_checks(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    """The CA core's key rules apply to a CRMF key as to a CSR's: RSA-1024 is refused (badCertTemplate)."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"weak-{uuid.uuid4().hex[:8]}", "rsa:1024")
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, tmp_path / "w.pem", live.root_pem))
    assert result.returncode != 0 and "badCertTemplate" in _output(result), _output(result)
    assert "too small" in _output(result), _output(result)
    assert live.runtime.repo.proofing_event(event_id).used_at is None


def test_a_replayed_certconf_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"conf-{uuid.uuid4().hex[:8]}")
    sent = [tmp_path / "ir.der", tmp_path / "certconf.der"]
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, tmp_path / "c.pem", live.root_pem),
                        "-reqout", ",".join(str(p) for p in sent))  # fmt: skip
    assert result.returncode == 0 and "received PKICONF" in _output(result), _output(result)
    assert _post(live, sent[1].read_bytes()) == ("error", "badSenderNonce")
    assert _post(live, sent[0].read_bytes()) == ("error", "transactionIdInUse")


def test_the_one_time_secret_works_once(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    for attempt, expected in enumerate((0, 1)):
        key = holder.new_key(f"once-{uuid.uuid4().hex[:8]}")
        out = tmp_path / f"once-{attempt}.pem"
        result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, out, live.root_pem))
        assert (result.returncode != 0) == bool(expected), _output(result)
    assert "notAuthorized" in _output(result) and "already used" in _output(result), _output(result)


# -- the CMP responder: a cmp-responder certificate per issuing CA, provisioned by init ----------------------
CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")


def _responder_records(rt: Runtime, status: str | None = "issued") -> list[CertificateRecord]:
    return [r for r in rt.repo.certificates(status) if r.profile == PROFILE]


def _last_audit_seq(rt: Runtime) -> int:
    return max(r.seq or 0 for r in rt.repo.audit_records(limit=1_000_000))


@pytest.mark.parametrize("ca", CAS)
def test_the_responder_certificate_is_recorded_linted_and_good(
    live: Live, holder: HolderToken, tmp_path: Path, ca: str
) -> None:
    """The certificate that signs CMP answers (an extraCert of the genm answer openssl verified) is a recorded,
    audited cmp-responder certificate of that CA for its token key: it verifies to the root, pkilint finds no
    error, and koshin's OCSP responder answers good."""
    extra = tmp_path / "extra.pem"
    result = holder.cmp(live.base_url, ca, "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x",
                        "-trusted", str(live.root_pem), "-extracertsout", str(extra))  # fmt: skip
    assert result.returncode == 0, _output(result)
    sent = [c for c in x509.load_pem_x509_certificates(extra.read_bytes()) if c.issuer == live.issuing[ca].subject]
    assert len(sent) == 1, sent
    certificate = sent[0]
    leaf = tmp_path / "responder.pem"
    leaf.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    rt = live.runtime
    record = rt.repo.certificate(certificate.serial_number)
    assert (record.profile, record.issuer, record.status) == (PROFILE, ca, "issued")
    assert record.certificate_der == certificate.public_bytes(serialization.Encoding.DER)
    actions = [r.action for r in rt.repo.audit_records(limit=1_000_000) if r.object == record.serial_hex]
    assert actions == ["certificate.intent", "certificate.issue"]  # the intent was recorded before the signature
    token_key = load_der_public_key(rt.session.public_key_der(key_label(rt, ca)))
    assert certificate.public_key() == token_key

    ca_name = live.issuing[ca].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert certificate.subject.rfc4514_string() == f"CN={ca_name!s} CMP responder,O=koshin,C=JP"
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [CMC_RA]
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)

    _verified(live, ca, leaf)
    assert pkilint_errors(leaf) == ""
    assert "Cert Status: good" in _ocsp(live, ca, leaf)


def test_a_second_init_changes_nothing(live: Live) -> None:
    rt = live.runtime
    certificates, seq = len(rt.repo.certificates()), _last_audit_seq(rt)
    responders = _responder_records(rt)
    assert sorted(r.issuer for r in responders) == sorted(CAS)
    assert not rt.init_hierarchy()
    assert provision_responders(rt) == []
    assert len(rt.repo.certificates()) == certificates and _last_audit_seq(rt) == seq
    assert [r.serial_hex for r in _responder_records(rt)] == [r.serial_hex for r in responders]


def test_an_older_installation_gets_its_responders_from_the_next_init(softhsm: SoftHsm, tmp_path: Path) -> None:
    """A hierarchy made before the responders were provisioned (their profile absent), whose signature responder
    key the earlier code had made on first use: requests never make a key; the next init certifies that key and
    makes the missing one, once."""
    settings = Settings(home=tmp_path, pkcs11_module=softhsm.module, token_label=softhsm.token_label,
                        token_pin=SecretStr(softhsm.pin), database_url=f"sqlite:///{tmp_path / 'koshin.db'}",
                        ca_key_algorithm=KeyAlgorithm.P256, key_label_prefix="cmp-older-")  # fmt: skip
    rt = open_runtime(settings)
    try:
        full = rt.profiles
        rt.profiles = full.model_copy(update={"servers": {n: p for n, p in full.servers.items() if n != PROFILE}})
        assert rt.init_hierarchy() and _responder_records(rt, None) == []
        rt.profiles = full
        rt.session.generate_keypair(KeyAlgorithm.P256, key_label(rt, "signature"))
        earlier_key = load_der_public_key(rt.session.public_key_der(key_label(rt, "signature")))
        with pytest.raises(CaNotInitialised, match="koshin init"):
            responder(rt, "user-authentication")
        assert not rt.session.has_key(key_label(rt, "user-authentication"))

        assert not rt.init_hierarchy()
        records = {r.issuer: r for r in _responder_records(rt)}
        assert sorted(records) == sorted(CAS)
        assert responder(rt, "signature").certificate.public_key() == earlier_key
        assert rt.session.has_key(key_label(rt, "user-authentication"))
        certificates, seq = len(rt.repo.certificates()), _last_audit_seq(rt)
        assert not rt.init_hierarchy()
        assert len(rt.repo.certificates()) == certificates and _last_audit_seq(rt) == seq
    finally:
        rt.close()


def test_a_responder_certificate_near_its_end_is_renewed_and_the_old_superseded(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    rt = make_runtime(softhsm, tmp_path / "home", f"sqlite:///{tmp_path / 'koshin.db'}", "cmp-renew-")
    try:
        first = responder(rt, "signature").certificate
        assert responder(rt, "signature").certificate == first  # not due: reused
        authority = rt.authority()
        public_key = load_der_public_key(rt.session.public_key_der(key_label(rt, "signature")))
        ca_name = (
            authority.issuers["signature"].certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        )
        names = ServerNames(dns=(), common_name=f"{ca_name!s} CMP responder")
        back_dated = datetime.now(UTC) - timedelta(days=340)  # ends in 25 days: due
        prepared = prepare_server_certificate(authority, PROFILE, public_key, names, back_dated,  # type: ignore[arg-type]
                                              issuing_ca="signature")  # fmt: skip
        ending = authority.issue_prepared(prepared, rt.repo).certificate

        renewed = responder(rt, "signature").certificate
        assert renewed.serial_number not in (first.serial_number, ending.serial_number)
        assert renewed.public_key() == first.public_key()  # renewal: the same token key
        assert renewed.not_valid_after_utc - datetime.now(UTC) > timedelta(days=360)
        for old in (first, ending):
            record = rt.repo.certificate(old.serial_number)
            assert (record.status, record.revocation_reason) == ("revoked", "superseded")
        crl = x509.load_der_x509_crl(rt.current_crl("signature"))
        assert {first.serial_number, ending.serial_number} <= {e.serial_number for e in crl}
        assert responder(rt, "signature").certificate == renewed
        assert provision_responders(rt) == []
        assert [r.issuer for r in _responder_records(rt)] == ["user-authentication", "signature"]
    finally:
        rt.close()


def test_serve_with_two_workers_provisions_the_responders_before_any_request(tmp_path: Path) -> None:
    """`koshin serve --workers 2` on a fresh home: both responders exist (one certificate each) before the first
    CMP request, so concurrent requests to both workers neither make keys nor certificates."""
    require_softhsm()
    cli = Cli(tmp_path / "home")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    cli.env["KOSHIN_PUBLIC_BASE_URL"] = base
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([KOSHIN, "serve", "--port", str(port), "--workers", "2"], env=cli.env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert server.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail(f"koshin serve --workers 2 did not become healthy: {log.read_text()[-2000:]}")

        def responders() -> list[tuple[str, str]]:
            with sqlite3.connect(cli.home / "koshin.db") as db:
                query = "SELECT issuer, status FROM certificate WHERE profile = ? ORDER BY issuer"
                return [(str(a), str(b)) for a, b in db.execute(query, (PROFILE,))]

        assert responders() == [("signature", "issued"), ("user-authentication", "issued")]
        root = tmp_path / "root.pem"
        chain = x509.load_pem_x509_certificates(httpx.get(f"{base}/v1/ca/chain", timeout=10).content)
        root.write_bytes(next(c for c in chain if c.subject == c.issuer).public_bytes(serialization.Encoding.PEM))

        def genm(ca: str) -> subprocess.CompletedProcess[str]:
            return run([openssl(), "cmp", "-server", f"127.0.0.1:{port}", "-path", f".well-known/cmp/p/{ca}",
                        "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x", "-trusted", str(root)],
                       timeout=60)  # fmt: skip

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(genm, [*CAS, *CAS, *CAS, *CAS]))
        for result in results:
            assert result.returncode == 0 and "received GENP" in _output(result), _output(result)
        assert responders() == [("signature", "issued"), ("user-authentication", "issued")]
        assert "Traceback" not in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
