"""CMP (RFC 4210/9480 over RFC 6712 HTTP) against the live server, driven by `openssl cmp` with the holder's keys
on a SoftHSM token through OpenSSL's pkcs11 engine; results checked with `openssl verify` and `openssl ocsp`.

Requests that openssl cannot be made to send (tampered, replayed) are taken from `openssl cmp -reqout` aimed at
a closed port, altered or re-sent with httpx, and the answer decoded with pyasn1.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc9480
from sqlalchemy import update
from sqlmodel import Session, col

from ca.validity import AUTH_CERT_RULE
from service.db.models import CertificateRecord
from service.protocols.cmp.messages import protected_part
from service.protocols.cmp.protection import PbmParameters
from service.protocols.phone import application_bytes
from tests.conftest import Makers
from tests.support.api_world import COUNTER_EVIDENCE, MIYAZAKI
from tests.support.attested import SoftDevice
from tests.support.cmp_tools import HolderToken, ocsp_text, output, verified
from tests.support.live_fixture import Live

pytestmark = pytest.mark.hsm
CMP_MEDIA = "application/pkixcmp"


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> HolderToken:
    return HolderToken.create(tmp_path_factory.mktemp("cmp-holder"))


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
    """A counter proofing event (cert_issue, P1-CERT): its id and its one-time enrollment secret."""
    event = live.client.post("/v1/proofing-events", "municipal_staff", {"resident_number": number,
                             "operation": "cert_issue", "channel": "counter_in_person",
                             "evidence": COUNTER_EVIDENCE})  # fmt: skip
    assert event.status_code == 201, event.text
    return str(event.json()["id"]), str(event.json()["enrollment_secret"])


def _ir_args(event_id: str, secret: str, key_uri: str, out: Path, root: Path) -> list[str]:
    return ["-cmd", "ir", "-ref", event_id, "-secret", f"pass:{secret}", "-newkey", key_uri,
            "-subject", "/CN=holder", "-certout", str(out), "-trusted", str(root)]  # fmt: skip


def _enrolled(
    live: Live, holder: HolderToken, tmp_path: Path, ca: str = "signature", key_type: str = "EC:prime256v1"
) -> tuple[Path, str]:
    """A certificate issued over CMP ir for a new key on the holder token: its PEM path and key URI."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"ir-{uuid.uuid4().hex[:8]}", key_type)
    out = tmp_path / f"ir-{ca}.pem"
    result = holder.cmp(live.base_url, ca, *_ir_args(event_id, secret, key, out, live.root_pem))
    assert result.returncode == 0, output(result)
    return out, key


# -- ir + certConf --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ca", "key_type"),
    [("signature", "EC:prime256v1"), ("signature", "rsa:2048"), ("user-authentication", "EC:secp384r1"),
     ("user-authentication", "rsa:3072")],
)  # fmt: skip
def test_ir_with_the_one_time_secret(live: Live, holder: HolderToken, tmp_path: Path, ca: str, key_type: str) -> None:
    leaf, _ = _enrolled(live, holder, tmp_path, ca, key_type)
    certificate = verified(live, ca, leaf)
    assert "Cert Status: good" in ocsp_text(live, ca, leaf)
    record = live.runtime.repo.certificate(certificate.serial_number)
    assert record.status == "issued" and record.profile == ca
    assert certificate.subject.rfc4514_string() != "CN=holder"  # the profile names the subject, not the client


@pytest.mark.parametrize("infotype", [("-infotype", "caCerts"), ()], ids=["caCerts", "default"])
def test_genm_returns_the_ca_certificates(live: Live, holder: HolderToken, infotype: tuple[str, ...]) -> None:
    """openssl 3.0 `-cmd genm` (unprotected: CA certificates are public) gets id-it-caCerts, also by default."""
    result = holder.cmp(live.base_url, "signature", "-cmd", "genm", "-unprotected_requests", "-subject", "/CN=x",
                        "-trusted", str(live.root_pem), *infotype)  # fmt: skip
    assert result.returncode == 0, output(result)
    assert "received GENP" in output(result) and "genp contains ITAV of type: id-it-caCerts" in output(result)


# -- kur: the phone re-key in a standard protocol ------------------------------------------------------------
@pytest.fixture(scope="module")
def soft_phone(device_maker: Makers) -> SoftDevice:
    """The attestation key of the phone the holder token stands for, certified by the test device maker."""
    return SoftDevice.made_by(device_maker, "cmp-phone")


def _public(holder: HolderToken, uri: str, out: Path) -> Any:
    return x509.load_pem_x509_csr(holder.csr(uri, out).read_bytes()).public_key()


def _phone(live: Live, holder: HolderToken, tmp_path: Path, phone: SoftDevice) -> tuple[Path, str]:
    """A phone signature certificate (REST enrollment, policy P11) for a key on the holder token."""
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
    attest = {p: phone.attest(x509.load_pem_x509_csr(c).public_key(), bytes.fromhex(nonce)) for p, c in csrs.items()}
    enrolled = live.client.post("/v1/phone-enrollments", "holder_app", {
        "card_certificate_pem": issued.json()["certificate_pem"], "device_id": f"phone-{tag}",
        "signature_csr_pem": csrs["signature"].decode(),
        "user_authentication_csr_pem": csrs["user-authentication"].decode(),
        "nonce": nonce, "application_signature_b64": base64.b64encode(signature).decode(),
        "signature_attestation_pem": attest["signature"],
        "user_authentication_attestation_pem": attest["user-authentication"]})  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    path = tmp_path / "phone-signature.pem"
    path.write_text(enrolled.json()["signature"]["certificate_pem"])
    return path, keys["signature"]


def _kur(live: Live, holder: HolderToken, cert: Path, key: str, out: Path,
         phone: SoftDevice | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``openssl cmp -cmd kur``; with ``phone``, the new key's attestation goes along in extraCerts."""
    new_key = holder.new_key(f"kur-{uuid.uuid4().hex[:8]}")
    extra: list[str] = []
    if phone is not None:
        current = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
        chain = out.with_suffix(".attestation.pem")
        chain.write_text(phone.attest(_public(holder, new_key, out.with_suffix(".csr")),
                                      hashlib.sha256(current).digest()))  # fmt: skip
        extra = ["-extracerts", str(chain)]
    return holder.cmp(live.base_url, "signature", "-cmd", "kur", "-cert", str(cert), "-key", key, "-newkey", new_key,
                      "-certout", str(out), "-trusted", str(live.root_pem), *extra)  # fmt: skip


def test_kur_rekeys_a_phone_certificate_and_supersedes_it(
    live: Live, holder: HolderToken, tmp_path: Path, soft_phone: SoftDevice
) -> None:
    current, key = _phone(live, holder, tmp_path, soft_phone)
    unattested = _kur(live, holder, current, key, tmp_path / "unattested.pem")  # no attestation: no P11-REKEY
    assert unattested.returncode != 0 and "notAuthorized" in output(unattested), output(unattested)
    assert "P11-ELSE" in output(unattested), output(unattested)
    renewed = tmp_path / "renewed.pem"
    result = _kur(live, holder, current, key, renewed, soft_phone)
    assert result.returncode == 0, output(result)
    new = verified(live, "signature", renewed)
    old = x509.load_pem_x509_certificate(current.read_bytes())
    assert new.public_key() != old.public_key()
    record = live.runtime.repo.certificate(new.serial_number)
    assert record.replaces_serial == f"{old.serial_number:040x}" and record.key_origin == "device"
    assert live.runtime.repo.proofing_event(record.proofing_event_id or "").rule_id == "P11-REKEY"
    assert "Cert Status: good" in ocsp_text(live, "signature", renewed)
    superseded = ocsp_text(live, "signature", current)
    assert "Cert Status: revoked" in superseded and "Reason: superseded" in superseded

    again = _kur(live, holder, current, key, tmp_path / "again.pem", soft_phone)  # the superseded one is spent
    assert again.returncode != 0 and "certRevoked" in output(again), output(again)


def test_kur_of_a_phone_signature_certificate_never_outlives_the_phones_auth_certificate(
    live: Live, holder: HolderToken, tmp_path: Path, soft_phone: SoftDevice
) -> None:
    current, key = _phone(live, holder, tmp_path, soft_phone)
    device = live.runtime.repo.certificate(x509.load_pem_x509_certificate(current.read_bytes()).serial_number).device_id
    earlier = (datetime.now(UTC) + timedelta(days=300)).replace(microsecond=0)  # the phone's auth one, shortened
    with Session(live.runtime.repo.engine) as session:
        session.exec(update(CertificateRecord).where(col(CertificateRecord.device_id) == device,
                     col(CertificateRecord.profile) == "user-authentication").values(not_after=earlier))  # fmt: skip
        session.commit()
    renewed = tmp_path / "capped.pem"
    result = _kur(live, holder, current, key, renewed, soft_phone)
    assert result.returncode == 0, output(result)
    new = verified(live, "signature", renewed)
    assert new.not_valid_after_utc == earlier
    assert live.runtime.repo.certificate(new.serial_number).validity_rule == AUTH_CERT_RULE


def test_kur_of_a_card_certificate_is_refused_by_the_policy(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    """current-2022 P12/P6: no online renewal of a card-style certificate; the error names notAuthorized."""
    leaf, key = _enrolled(live, holder, tmp_path)
    result = _kur(live, holder, leaf, key, tmp_path / "refused.pem")
    assert result.returncode != 0 and "notAuthorized" in output(result), output(result)
    assert "P12" in output(result) or "P6" in output(result), output(result)


# -- rr ------------------------------------------------------------------------------------------------------
def test_rr_signed_by_the_certificate_key_revokes_it(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    leaf, key = _enrolled(live, holder, tmp_path)
    result = holder.cmp(live.base_url, "signature", "-cmd", "rr", "-oldcert", str(leaf), "-cert", str(leaf),
                        "-key", key, "-revreason", "1", "-trusted", str(live.root_pem))  # fmt: skip
    assert result.returncode == 0, output(result)
    status = ocsp_text(live, "signature", leaf)
    assert "Cert Status: revoked" in status and "keyCompromise" in status, status

    again = holder.cmp(live.base_url, "signature", "-cmd", "rr", "-oldcert", str(leaf), "-cert", str(leaf),
                       "-key", key, "-trusted", str(live.root_pem))  # fmt: skip
    assert again.returncode != 0 and "certRevoked" in output(again), output(again)


# -- refusals ------------------------------------------------------------------------------------------------
def test_ir_with_a_wrong_secret_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    wrong = "a" * len(secret) if secret != "a" * len(secret) else "b" * len(secret)
    key = holder.new_key(f"wrong-{uuid.uuid4().hex[:8]}")
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, wrong, key, tmp_path / "x.pem", live.root_pem))
    assert result.returncode != 0 and "badMessageCheck" in output(result), output(result)
    assert live.runtime.repo.proofing_event(event_id).used_at is None  # the event is not spent


def _unsent_ir(live: Live, holder: HolderToken, tmp_path: Path) -> tuple[bytes, str]:
    """A valid ir that openssl wrote (-reqout) but could not send (a closed port), and its secret."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"unsent-{uuid.uuid4().hex[:8]}")
    request = tmp_path / "ir.der"
    closed = holder.cmp("http://127.0.0.1:9", "signature", *_ir_args(event_id, secret, key, tmp_path / "x.pem",
                        live.root_pem), "-reqout", str(request))  # fmt: skip
    assert closed.returncode != 0 and request.exists(), output(closed)
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
    assert result.returncode == 0, output(result)
    assert "sending CERTCONF" not in output(result), output(result)
    verified(live, "signature", out)


def test_an_unknown_profile_gets_a_cmp_error(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    der, _ = _unsent_ir(live, holder, tmp_path)
    assert _post(live, der, "no-such-profile") == ("error", "badRequest")


def test_ir_still_runs_the_key_checks(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    """The CA core's key rules apply to a CRMF key as to a CSR's: RSA-1024 is refused (badCertTemplate)."""
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"weak-{uuid.uuid4().hex[:8]}", "rsa:1024")
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, tmp_path / "w.pem", live.root_pem))
    assert result.returncode != 0 and "badCertTemplate" in output(result), output(result)
    assert "too small" in output(result), output(result)
    assert live.runtime.repo.proofing_event(event_id).used_at is None


def test_a_replayed_certconf_is_refused(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    key = holder.new_key(f"conf-{uuid.uuid4().hex[:8]}")
    sent = [tmp_path / "ir.der", tmp_path / "certconf.der"]
    result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, tmp_path / "c.pem", live.root_pem),
                        "-reqout", ",".join(str(p) for p in sent))  # fmt: skip
    assert result.returncode == 0 and "received PKICONF" in output(result), output(result)
    assert _post(live, sent[1].read_bytes()) == ("error", "badSenderNonce")
    assert _post(live, sent[0].read_bytes()) == ("error", "transactionIdInUse")


def test_the_one_time_secret_works_once(live: Live, holder: HolderToken, tmp_path: Path) -> None:
    number, _ = _resident(live)
    event_id, secret = _proofing(live, number)
    for attempt, expected in enumerate((0, 1)):
        key = holder.new_key(f"once-{uuid.uuid4().hex[:8]}")
        out = tmp_path / f"once-{attempt}.pem"
        result = holder.cmp(live.base_url, "signature", *_ir_args(event_id, secret, key, out, live.root_pem))
        assert (result.returncode != 0) == bool(expected), output(result)
    assert "notAuthorized" in output(result) and "already used" in output(result), output(result)
