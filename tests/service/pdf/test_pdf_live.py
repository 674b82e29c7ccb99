"""PAdES signatures made with holder keys on device tokens (pyHanko's PKCS#11 signer), validated against the
live koshin service: its root, its OCSP responder and CRLs. No mocks: a card personalised at the station, a
phone enrolled with it, ``koshin sign-pdf`` / ``koshin verify-pdf`` run in-process.

The tests run in file order: the last one changes the holder's address, which revokes the signature
certificates, and checks what validation says afterwards."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import SecretStr
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from typer.testing import CliRunner, Result

from devices.capabilities import load_token_profile
from devices.device import Device
from devices.phone import Phone
from devices.station import CardRenewal, Station
from hsm.errors import PinIncorrect
from service.cli.main import app
from service.cli.pdf_commands import device_credential
from service.db.repository import utc
from service.pdf.errors import CertificateNotForSigning, SigningFailed
from service.pdf.sample import sample_pdf
from service.pdf.timestamp import stated_time
from service.pdf.verification import embedded_revocation_counts
from service.settings import Settings
from tests.conftest import TRANSPORT_PINS, Makers, SoftHsm
from tests.support.live_fixture import Live, card_device, new_resident

pytestmark = pytest.mark.hsm

CARD = "t-card-pdf"
PHONE = "t-phone-pdf"
CARD_PINS = {"signature": "PDFSIGNER1", "user-authentication": "2468"}
MARKER = b"koshin pdf test: the agreed text"
runner = CliRunner()


@dataclass
class Holder:
    resident: str
    card: Device
    issued: CardRenewal
    phone_certificate: Path  # the phone's signature certificate (phones keep no certificates on the token)
    auth_certificate: Path  # the card's user-authentication certificate
    pins: dict[str, Path]  # token label -> PIN file
    source: Path  # the unsigned PDF
    module: str


@pytest.fixture(scope="module")
def holder(
    live: Live, station: Station, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory, device_maker: Makers
) -> Holder:
    state = tmp_path_factory.mktemp("pdf-devices")
    resident = new_resident(station)
    card = card_device(softhsm, CARD, state)
    issued = station.renew_card(resident_number=resident, card=card, card_number="CPDF0000001",
                                transport_pins=TRANSPORT_PINS["card"], holder_pins=CARD_PINS,
                                replaces_card=None)  # fmt: skip
    token = live.runtime.repo.add_actor("pdf-phone-app", "holder_app", None)[1]
    http = httpx.Client(base_url=live.base_url, timeout=30.0, headers={"Authorization": f"Bearer {token}"})
    phone = Phone(http, Device(softhsm.module, PHONE, load_token_profile("phone"), state), TRANSPORT_PINS["phone"],
                  f"phone-{PHONE}", device_maker.of(PHONE))  # fmt: skip
    enrollment = phone.enroll(card, CARD_PINS["signature"], issued.certificates["signature"]["certificate_pem"])
    files = tmp_path_factory.mktemp("pdf-files")
    pins = {}
    for label, pin in (
        (f"{CARD}-signature", CARD_PINS["signature"]),
        (f"{CARD}-user-authentication", CARD_PINS["user-authentication"]),
        (f"{PHONE}-signature", TRANSPORT_PINS["phone"]["signature"]),
    ):
        pins[label] = files / f"{label}.pin"
        pins[label].write_text(pin + "\n")
    phone_cert = files / "phone-signature.pem"
    phone_cert.write_text(enrollment.answer["signature"]["certificate_pem"])
    auth_cert = files / "card-auth.pem"
    auth_cert.write_text(issued.certificates["user-authentication"]["certificate_pem"])
    source = files / "in.pdf"
    source.write_bytes(sample_pdf(MARKER.decode()))
    return Holder(resident, card, issued, phone_cert, auth_cert, pins, source, softhsm.module)


def sign(holder: Holder, live: Live, out: Path, token: str, *extra: str) -> Result:
    pin = holder.pins[token]
    args = ["sign-pdf", str(holder.source), str(out), "--module", holder.module, "--token", token,
            "--pin-file", str(pin), "--url", live.base_url, *extra]  # fmt: skip
    return runner.invoke(app, args)


def verify(live: Live, pdf: Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["verify-pdf", str(pdf), "--trust", str(live.root_pem), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, report["signatures"][0]


@pytest.fixture(scope="module")
def signed(holder: Holder, live: Live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The signatures made while the certificates are good: card (RSA), card with LTV (B-LT: time-stamped by
    koshin's TSA), card time-stamped only (B-T, with an explicit --tsa), phone (P-256)."""
    out = tmp_path_factory.mktemp("pdf-signed")
    paths = {"card": out / "card.pdf", "card-ltv": out / "card-ltv.pdf", "card-bt": out / "card-bt.pdf",
             "phone": out / "phone.pdf"}  # fmt: skip
    for result in (
        sign(holder, live, paths["card"], f"{CARD}-signature"),
        sign(holder, live, paths["card-ltv"], f"{CARD}-signature", "--ltv"),
        sign(holder, live, paths["card-bt"], f"{CARD}-signature", "--tsa", f"{live.base_url}/tsa"),
        sign(
            holder,
            live,
            paths["phone"],
            f"{PHONE}-signature",
            "--cert",
            str(holder.phone_certificate),
            "--chain",
            str(live.bundle_pem),
        ),
    ):
        assert result.exit_code == 0, (result.output, result.exception)
    return paths


def test_card_signature_validates_with_the_holder_attributes(signed: dict[str, Path], live: Live) -> None:
    code, report = verify(live, signed["card"])
    assert code == 0 and report["valid"], report
    assert report["attributes"] == {
        "name": "宮崎 花子", "sex": "2", "date_of_birth": "1988-04-12", "date_of_birth_jpki": "319880412",
        "address": "宮崎県宮崎市橘通西一丁目1番1号"}  # fmt: skip
    assert report["integrity"] == "intact" and report["trusted"]
    assert (report["revocation"], report["revocation_source"]) == ("good", "live")
    assert report["signing_time"] is not None and report["usage_problems"] == []


def test_phone_p256_key_signs_through_raw_ecdsa(signed: dict[str, Path], live: Live, holder: Holder) -> None:
    code, report = verify(live, signed["phone"])
    assert code == 0 and report["valid"], report
    phone = x509.load_pem_x509_certificate(holder.phone_certificate.read_bytes())
    assert report["serial"] == f"{phone.serial_number:040x}" and report["attributes"]["name"] == "宮崎 花子"


def test_ltv_signature_embeds_ocsp_and_crl(signed: dict[str, Path], live: Live) -> None:
    ocsps, crls = embedded_revocation_counts(signed["card-ltv"].read_bytes())
    # the leaf's OCSP answer; the root's CRL for the issuing CA; the signature CA's CRL for the TSA certificate
    assert ocsps >= 1 and crls >= 2
    assert embedded_revocation_counts(signed["card"].read_bytes()) == (0, 0)
    code, report = verify(live, signed["card-ltv"])
    assert code == 0 and report["valid"], report
    assert (report["revocation"], report["revocation_source"]) == ("good", "embedded")
    stamp = report["timestamp"]
    assert stamp["valid"] and "Time-Stamp Authority" in stamp["tsa"] and stamp["problem"] is None, stamp
    assert report["revocation_moment"] == "time-stamp" and report["revocation_judged_at"] == stamp["time"]


def test_ltv_signature_is_pades_b_lt_for_pyhanko(signed: dict[str, Path], live: Live) -> None:
    """pyHanko's own view, offline: the time-stamp verifies and chains to the root through the DSS alone, and
    the DSS holds revocation data for the TSA certificate (a CRL of its issuer, the signature CA)."""
    reader = PdfFileReader(io.BytesIO(signed["card-ltv"].read_bytes()), strict=False)
    sig = reader.embedded_regular_signatures[0]
    dss = DocumentSecurityStore.read_dss(reader)
    tsa_issuer = asn1_x509.Certificate.load(live.issuing["signature"].public_bytes(Encoding.DER)).subject
    context = dss.as_validation_context({"trust_roots": [asn1_x509.Certificate.load(live.root.public_bytes(
        Encoding.DER))], "allow_fetching": False, "revocation_mode": "hard-fail", "retroactive_revinfo": True,
        "moment": stated_time(sig.signer_info)})  # fmt: skip
    assert any(crl["tbs_cert_list"]["issuer"] == tsa_issuer for crl in context.crls)
    status = validate_pdf_signature(sig, context)
    assert status.bottom_line and status.timestamp_validity is not None
    stamp = status.timestamp_validity
    assert stamp.intact and stamp.valid and stamp.trusted


def test_time_stamp_alone_is_b_t_with_live_revocation(signed: dict[str, Path], live: Live) -> None:
    assert embedded_revocation_counts(signed["card-bt"].read_bytes()) == (0, 0)
    code, report = verify(live, signed["card-bt"])
    assert code == 0 and report["valid"] and report["timestamp"]["valid"], report
    assert (report["revocation_source"], report["revocation_moment"]) == ("live", "now")
    assert verify(live, signed["card"])[1]["timestamp"] is None


def test_a_changed_byte_in_the_signed_range_fails_integrity(
    signed: dict[str, Path], live: Live, tmp_path: Path
) -> None:
    data = signed["card"].read_bytes()
    assert data.count(MARKER) == 1
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(data.replace(MARKER, MARKER.replace(b"agreed", b"abreed")))
    code, report = verify(live, tampered)
    assert code == 1 and not report["valid"] and report["integrity"] == "modified"


def test_human_output_names_the_signer(signed: dict[str, Path], live: Live) -> None:
    result = runner.invoke(app, ["verify-pdf", str(signed["card"]), "--url", live.base_url])  # root fetched
    assert result.exit_code == 0, result.output
    for text in ("VALID", "宮崎 花子", "2 (female)", "1988-04-12 (Showa era; encoded 319880412)", "intact",
                 "good (live)", "not pinned"):  # fmt: skip
        assert text in result.stdout
    ltv = runner.invoke(app, ["verify-pdf", str(signed["card-ltv"]), "--url", live.base_url])
    assert ltv.exit_code == 0, ltv.output
    shown = " ".join(ltv.stdout.split())  # the console wraps long lines
    assert "by CN=koshin Time-Stamp Authority," in shown and "(valid)" in shown, shown
    assert "good (embedded, judged at the time-stamp 20" in shown, shown


def test_user_authentication_certificate_is_refused_before_signing(holder: Holder, live: Live, tmp_path: Path) -> None:
    out = tmp_path / "auth.pdf"
    from_token = sign(holder, live, out, f"{CARD}-user-authentication")
    assert isinstance(from_token.exception, CertificateNotForSigning)
    assert "nonRepudiation" in str(from_token.exception) and "clientAuth" in str(from_token.exception)
    # with --cert the refusal comes before the token is opened: no PIN file, and no prompt either
    given = runner.invoke(app, ["sign-pdf", str(holder.source), str(out), "--module", holder.module, "--token",
                                f"{CARD}-user-authentication", "--cert", str(holder.auth_certificate)])  # fmt: skip
    assert isinstance(given.exception, CertificateNotForSigning)
    assert not out.exists()
    # the installed command prints it as one line on stderr
    koshin = Path(sys.executable).parent / "koshin"
    args = [str(koshin), "sign-pdf", str(holder.source), str(out), "--module", holder.module, "--token",
            f"{CARD}-user-authentication", "--cert", str(holder.auth_certificate)]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("koshin: error: certificate "), done.stderr
    assert done.stderr.count("\n") == 1 and "may not sign documents" in done.stderr and not out.exists()


def test_stored_device_tokens_open_through_their_pin_counter(holder: Holder, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, pkcs11_module=None, token_pin=SecretStr("unused"))
    (tmp_path / "secrets" / "devices").mkdir(parents=True)
    (tmp_path / "secrets" / "devices" / f"{CARD}.json").write_text(json.dumps({"kind": "card"}))
    found = device_credential(settings, holder.module, f"{CARD}-signature")
    assert found is not None and (found[0].name, found[1]) == (CARD, "signature")
    assert device_credential(settings, holder.module, f"{CARD}-operator") is None
    with pytest.raises(PinIncorrect, match="4 tries left"):
        found[0].open("signature", "WRONGPIN9")
    assert found[0].failures("signature") == 1


def test_after_the_address_change_live_validation_reports_revoked(
    signed: dict[str, Path], holder: Holder, live: Live, station: Station, tmp_path: Path
) -> None:
    change = station.http.patch(f"/v1/residents/{holder.resident}", json={"address": "宮崎県宮崎市別府町3番地"})
    assert change.status_code == 200, change.text
    assert holder.issued.certificates["signature"]["serial"] in change.json()["revoked_serials"]
    for name in ("card", "phone"):
        code, report = verify(live, signed[name])
        assert code == 1 and not report["valid"], report
        assert (report["revocation"], report["revocation_source"]) == ("revoked", "live")
        assert report["revocation_reason"] == "affiliation_changed" and report["integrity"] == "intact"
    # the LTV signature carries the answer given at signing time, before the change, and it is judged at the
    # time the TSA vouches for (not at a time the signer could have claimed): the revocation came later
    code, report = verify(live, signed["card-ltv"])
    assert code == 0 and (report["revocation"], report["revocation_source"]) == ("good", "embedded")
    assert report["revocation_moment"] == "time-stamp" and report["timestamp"]["valid"], report
    revoked = live.runtime.repo.certificate(int(report["serial"], 16)).revoked_at
    assert revoked is not None
    assert datetime.fromisoformat(report["revocation_judged_at"]) < utc(revoked)
    # the B-T signature has a time-stamp but no embedded answers: live validation says revoked
    code, report = verify(live, signed["card-bt"])
    assert code == 1 and report["revocation"] == "revoked" and report["timestamp"]["valid"], report
    # and a new LTV signature with the revoked certificate is refused by pyHanko's pre-signing validation
    refused = sign(holder, live, tmp_path / "late.pdf", f"{CARD}-signature", "--ltv")
    assert isinstance(refused.exception, SigningFailed), refused.output
    assert "revoked" in str(refused.exception).lower(), refused.exception
