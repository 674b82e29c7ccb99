"""One failure rule for every channel: the token fails on a certificate of a request (injected), and nothing of
the request is delivered. Certificates already signed for it are recorded revoked (cessationOfOperation, the DER
kept), the others failed, none is issued or left pending, and the authorisation is given back, so the same
request succeeds once the token works again.

Channels: REST ``/v1/certificates``, ``/v1/card-issuances`` (a pair: fails on the second), phone enrollment (a
pair: fails on the second), phone re-key, EST ``simpleenroll`` and CMP ``ir`` (their flow entry points, as
tests/service/protocols/test_est.py and test_cmp.py drive them over the wire), CMP ``kur`` (its flow, ``rekey``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ca.issuance import PreparedCertificate
from hsm.errors import HsmError
from service.db.models import CertificateRecord
from service.flows.enrollment import enrollment_secret, event_actor
from service.flows.issuance import IssueInput, issue_certificate
from service.protocols import est
from service.protocols.cmp.renewal import rekey, rekey_challenge
from service.protocols.phone import application_bytes, renewal_bytes
from tests.conftest import Makers
from tests.support.api_world import Api
from tests.support.attested import SoftDevice
from tests.support.crl_wait import wait_for_crl
from tests.support.requests import card_issuance as _card_issuance
from tests.support.requests import counter_event as _event
from tests.support.requests import csr_pem as _csr
from tests.support.requests import enrolled_card as _enrolled_card
from tests.support.requests import phone_nonce as _nonce
from tests.support.requests import signed_b64 as _signed
from tests.support.requests import software_key as _key

pytestmark = pytest.mark.hsm


@pytest.fixture(scope="module")
def soft_phone(device_maker: Makers) -> SoftDevice:
    return SoftDevice.made_by(device_maker, "pipeline-phone")


@contextmanager
def token_fails_on(api: Api, monkeypatch: pytest.MonkeyPatch, nth: int) -> Iterator[list[int]]:
    """The CA core's token signature fails on the ``nth`` call from now (1-based); yields the calls seen."""
    authority = api.runtime.authority()
    real: Callable[[PreparedCertificate], x509.Certificate] = authority.sign
    calls: list[int] = []

    def sign(prepared: PreparedCertificate) -> x509.Certificate:
        calls.append(prepared.intent.serial)
        if len(calls) == nth:
            prepared.used = True
            raise HsmError("C_Sign failed: CKR_DEVICE_ERROR (injected)")
        return real(prepared)

    with monkeypatch.context() as patch:
        patch.setattr(authority, "sign", sign)
        yield calls


def _rows(api: Api, where: Callable[[CertificateRecord], bool]) -> list[CertificateRecord]:
    return [r for r in api.runtime.repo.certificates() if where(r)]


def _assert_nothing_delivered(rows: list[CertificateRecord], signed_before_failure: int) -> None:
    """The rule: the first ``signed_before_failure`` were signed and are revoked, the rest failed."""
    assert rows, "the request recorded no intent"
    statuses = [(r.status, r.revocation_reason) for r in rows]
    expected: list[tuple[str, str | None]] = [("revoked", "cessationOfOperation")] * signed_before_failure
    expected += [("failed", None)] * (len(rows) - signed_before_failure)
    assert statuses == expected, statuses
    for row in rows[:signed_before_failure]:
        assert row.certificate_der is not None  # what was signed is kept, revoked
    for row in rows[signed_before_failure:]:
        assert row.certificate_der is None and row.failure


def _used(api: Api, event_id: str) -> bool:
    return bool(api.get(f"/v1/proofing-events/{event_id}", "municipal_staff").json()["used"])


def _token_problem(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/token-unavailable"


def test_rest_certificate(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event = _event(api, resident)
    body = {"csr_pem": _csr(_key()), "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event["id"]}  # fmt: skip
    with token_fails_on(api, monkeypatch, 1):
        _token_problem(api.post("/v1/certificates", "municipal_staff", body))
    _assert_nothing_delivered(_rows(api, lambda r: r.proofing_event_id == event["id"]), 0)
    assert not _used(api, event["id"])  # given back
    assert api.post("/v1/certificates", "municipal_staff", body).status_code == 201


def test_card_pair_fails_on_its_second_certificate(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event = _event(api, resident, "card_issue")
    keys = {"signature": _key(), "user-authentication": _key()}
    with token_fails_on(api, monkeypatch, 2) as calls:
        _token_problem(_card_issuance(api, resident, event["id"], keys))
    assert len(calls) == 2
    rows = _rows(api, lambda r: r.proofing_event_id == event["id"])
    _assert_nothing_delivered(rows, 1)
    assert [r.profile for r in rows] == ["signature", "user-authentication"]
    assert not _used(api, event["id"])
    withheld = int(rows[0].serial_hex, 16)
    wait_for_crl(lambda: api.client.get("/crl/signature.crl").content, {withheld})
    answer = _card_issuance(api, resident, event["id"], keys)
    assert answer.status_code == 201, answer.text
    assert answer.json()["signature"]["status"] == "issued"


def _phone_enrollment(
    api: Api, card_key: ec.EllipticCurvePrivateKey, card_pem: str, device: str, phone: SoftDevice,
    keys: dict[str, ec.EllipticCurvePrivateKey] | None = None,
) -> dict[str, Any]:  # fmt: skip
    keys = keys if keys is not None else {"signature": _key(), "user-authentication": _key()}
    csrs = {p: _csr(k) for p, k in keys.items()}
    nonce = _nonce(api)
    application = application_bytes(nonce, device, {p: c.encode() for p, c in csrs.items()})
    attest = {p: phone.attest(k.public_key(), bytes.fromhex(nonce)) for p, k in keys.items()}
    return {"card_certificate_pem": card_pem, "device_id": device, "signature_csr_pem": csrs["signature"],
            "user_authentication_csr_pem": csrs["user-authentication"], "nonce": nonce,
            "application_signature_b64": _signed(card_key, application),
            "signature_attestation_pem": attest["signature"],
            "user_authentication_attestation_pem": attest["user-authentication"]}  # fmt: skip


def test_phone_enrollment_fails_on_its_second_certificate(
    api: Api, monkeypatch: pytest.MonkeyPatch, soft_phone: SoftDevice
) -> None:
    _, card_key, card_pem = _enrolled_card(api)
    device = f"phone-{uuid.uuid4().hex[:8]}"
    body = _phone_enrollment(api, card_key, card_pem, device, soft_phone)
    with token_fails_on(api, monkeypatch, 2) as calls:
        _token_problem(api.post("/v1/phone-enrollments", "holder_app", body))
    assert len(calls) == 2
    _assert_nothing_delivered(_rows(api, lambda r: r.device_id == device), 1)
    retried = api.post("/v1/phone-enrollments", "holder_app", body)  # the same signed application: nonce given back
    assert retried.status_code == 201, retried.text
    issued = _rows(api, lambda r: r.device_id == device and r.status == "issued")
    assert sorted(r.profile for r in issued) == ["signature", "user-authentication"]


def test_phone_rekey(api: Api, monkeypatch: pytest.MonkeyPatch, soft_phone: SoftDevice) -> None:
    _, card_key, card_pem = _enrolled_card(api)
    device = f"phone-{uuid.uuid4().hex[:8]}"
    phone_keys = {"signature": _key(), "user-authentication": _key()}
    enrolled = api.post("/v1/phone-enrollments", "holder_app",
                        _phone_enrollment(api, card_key, card_pem, device, soft_phone, phone_keys))  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    current = enrolled.json()["user_authentication"]
    new_key = _key()
    new_csr = _csr(new_key)
    nonce = _nonce(api)
    data = renewal_bytes(nonce, current["serial"], new_csr.encode())
    body = {"current_certificate_pem": current["certificate_pem"], "csr_pem": new_csr, "nonce": nonce,
            "signature_b64": _signed(phone_keys["user-authentication"], data),
            "attestation_pem": soft_phone.attest(new_key.public_key(), bytes.fromhex(nonce))}  # fmt: skip
    with token_fails_on(api, monkeypatch, 1):
        _token_problem(api.post("/v1/phone-renewals", "holder_app", body))
    _assert_nothing_delivered(_rows(api, lambda r: r.replaces_serial == current["serial"]), 0)
    assert api.runtime.repo.certificate(int(current["serial"], 16)).status == "issued"  # not superseded
    retried = api.post("/v1/phone-renewals", "holder_app", body)
    assert retried.status_code == 201, retried.text
    assert api.runtime.repo.certificate(int(current["serial"], 16)).status == "revoked"


def test_est_simpleenroll(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = api.new_resident()
    event = _event(api, resident)
    csr_der = x509.load_pem_x509_csr(_csr(_key()).encode()).public_bytes(Encoding.DER)
    secret = enrollment_secret(api.runtime, event["id"])
    assert secret == event["enrollment_secret"]
    with token_fails_on(api, monkeypatch, 1), pytest.raises(HsmError):
        est.enroll(api.runtime, "user-authentication", event["id"], secret, csr_der)
    _assert_nothing_delivered(_rows(api, lambda r: r.proofing_event_id == event["id"]), 0)
    assert not _used(api, event["id"])
    issued = est.enroll(api.runtime, "user-authentication", event["id"], secret, csr_der)
    assert issued.record.status == "issued"


def test_cmp_ir(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``initial_request`` asks of the pipeline: the event's actor, the CRMF key, no CSR."""
    resident = api.new_resident()
    event = _event(api, resident)
    stored = api.runtime.repo.proofing_event(event["id"])
    item = IssueInput(csr=b"", resident_number=resident, certificate_type="signature", proofing_event_id=event["id"],
                      public_key=_key().public_key())  # fmt: skip
    with token_fails_on(api, monkeypatch, 1), pytest.raises(HsmError):
        issue_certificate(api.runtime, event_actor(api.runtime, stored), item)
    _assert_nothing_delivered(_rows(api, lambda r: r.proofing_event_id == event["id"]), 0)
    assert not _used(api, event["id"])
    assert issue_certificate(api.runtime, event_actor(api.runtime, stored), item).record.status == "issued"


def test_cmp_kur(api: Api, monkeypatch: pytest.MonkeyPatch, soft_phone: SoftDevice) -> None:
    """``key_update`` asks ``rekey``: a signature certificate re-keyed on the current one's key. Under
    current-2022 the policy refuses an online signature renewal (P12), so this re-keys a phone certificate."""
    _, card_key, card_pem = _enrolled_card(api)
    device = f"phone-{uuid.uuid4().hex[:8]}"
    enrolled = api.post("/v1/phone-enrollments", "holder_app",
                        _phone_enrollment(api, card_key, card_pem, device, soft_phone))  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    record = api.runtime.repo.certificate(int(enrolled.json()["signature"]["serial"], 16))
    new_key = _key().public_key()
    attestation = soft_phone.attest(new_key, rekey_challenge(record)).encode()
    with token_fails_on(api, monkeypatch, 1), pytest.raises(HsmError):
        rekey(api.runtime, record, new_key, attestation)
    _assert_nothing_delivered(_rows(api, lambda r: r.replaces_serial == record.serial_hex), 0)
    assert api.runtime.repo.certificate(int(record.serial_hex, 16)).status == "issued"
    renewed = rekey(api.runtime, record, new_key, attestation)
    assert renewed.record.status == "issued"
    assert api.runtime.repo.certificate(int(record.serial_hex, 16)).status == "revoked"


def test_a_taken_serial_is_prepared_again_and_spends_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first serial drawn is one the store already holds: the intent transaction rolls back (nothing spent,
    nothing recorded), the pipeline prepares the request again with a fresh serial, and the event is spent once."""
    taken = int(api.runtime.repo.certificates("issued")[0].serial_hex, 16)
    draws = iter([taken])
    real = x509.random_serial_number
    monkeypatch.setattr(x509, "random_serial_number", lambda: next(draws, None) or real())
    resident = api.new_resident()
    event = _event(api, resident)
    body = {"csr_pem": _csr(_key()), "resident_number": resident, "certificate_type": "signature",
            "proofing_event_id": event["id"]}  # fmt: skip
    answer = api.post("/v1/certificates", "municipal_staff", body)
    assert answer.status_code == 201, answer.text
    assert int(answer.json()["serial"], 16) != taken
    assert [r.status for r in _rows(api, lambda r: r.proofing_event_id == event["id"])] == ["issued"]
    uses = [r.action for r in api.runtime.repo.audit_records(0, 1_000_000) if r.object == event["id"]]
    assert uses == ["proofing.record", "proofing.use"]
