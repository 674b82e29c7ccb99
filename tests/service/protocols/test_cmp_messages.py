"""CMP message handling without a token or server: OpenSSL's own requests (written with `openssl cmp -reqout`
towards a closed port) are decoded, their PBM verified, their POP checked; answers decode as RFC 9480 says."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc9480

from service.protocols.cmp import messages
from service.protocols.cmp.crmf import certificate_request
from service.protocols.cmp.errors import FAIL_INFO, CmpRejected
from service.protocols.cmp.protection import MacProtector, PbmParameters, verify_pbm
from service.protocols.cmp.responder import _due

SECRET = "correct-horse-battery"


@pytest.fixture(scope="module")
def ir_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is required (Debian package openssl)")
        pytest.skip("openssl is not installed")
    home = tmp_path_factory.mktemp("cmp-unit")
    key, request = home / "key.pem", home / "ir.der"
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "cmp", "-cmd", "ir", "-server", "127.0.0.1:9", "-ref", "event-1",
                    "-secret", f"pass:{SECRET}", "-newkey", str(key), "-subject", "/CN=x", "-certout",
                    str(home / "out.pem"), "-reqout", str(request)], capture_output=True, check=False)  # fmt: skip
    assert request.exists()
    return request.read_bytes()


def test_openssl_pbm_verifies_with_the_secret_only(ir_der: bytes) -> None:
    message = messages.decode(ir_der)
    algorithm, data = message["header"]["protectionAlg"], messages.protected_part(message)
    protection = message["protection"].asOctets()
    params = verify_pbm(algorithm, SECRET.encode(), data, protection)
    assert params.iterations >= 100
    with pytest.raises(CmpRejected) as wrong:
        verify_pbm(algorithm, b"wrong", data, protection)
    assert wrong.value.fail_info == "badMessageCheck"


def test_openssl_pop_verifies_and_a_foreign_key_does_not(ir_der: bytes) -> None:
    message = messages.decode(ir_der)
    request = certificate_request(message["body"]["ir"])
    assert isinstance(request.public_key, ec.EllipticCurvePublicKey) and request.asks_subject
    tampered = bytearray(ir_der)
    spki = message["body"]["ir"][0]["certReq"]["certTemplate"]["publicKey"]["subjectPublicKey"].asOctets()
    tampered[ir_der.index(spki) + 20] ^= 0x01
    with pytest.raises(CmpRejected) as refused:
        certificate_request(messages.decode(bytes(tampered))["body"]["ir"])
    assert refused.value.fail_info in ("badPOP", "badCertTemplate")  # an off-curve point does not even load


@pytest.mark.parametrize("count", [10_001, 100_000, 10_000_000, 99])
def test_pbm_iteration_counts_outside_what_a_client_needs_are_refused(ir_der: bytes, count: int) -> None:
    """openssl cmp sends 500; 100,000 iterations cost 0.18 s of CPU before the MAC is even checked."""
    message = messages.decode(ir_der)
    params, _ = PbmParameters.of(message["header"]["protectionAlg"])
    costly = PbmParameters(params.owf_oid, params.mac_oid, count).algorithm(b"salt")
    with pytest.raises(CmpRejected) as refused:
        PbmParameters.of(costly)
    assert refused.value.fail_info == "badAlg" and "100..10000" in refused.value.text
    assert PbmParameters.of(PbmParameters(params.owf_oid, params.mac_oid, 10_000).algorithm(b"salt"))[0].iterations


@pytest.mark.parametrize("fail_info", ["badMessageCheck", "transactionIdInUse", "certRevoked", "notAuthorized"])
def test_error_answers_carry_the_fail_info_bit(ir_der: bytes, fail_info: str) -> None:
    request = messages.decode(ir_der)
    params, _ = PbmParameters.of(request["header"]["protectionAlg"])
    der = messages.response(request, "error", messages.error_body(CmpRejected(fail_info, "why")), None,
                            MacProtector(params, SECRET.encode()))  # fmt: skip
    answer, rest = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    assert not rest and answer["header"]["transactionID"] == request["header"]["transactionID"]
    assert answer["header"]["recipNonce"] == request["header"]["senderNonce"]
    info = answer["body"]["error"]["pKIStatusInfo"]
    assert int(info["status"]) == 2 and [i for i, bit in enumerate(info["failInfo"]) if bit] == [
        FAIL_INFO.index(fail_info)
    ]
    verify_pbm(answer["header"]["protectionAlg"], SECRET.encode(), messages.protected_part(answer),
               answer["protection"].asOctets())  # fmt: skip


def test_garbage_and_unknown_fail_info_are_refused() -> None:
    with pytest.raises(CmpRejected) as garbage:
        messages.decode(b"\x30\x03\x02\x01\x00")
    assert garbage.value.fail_info == "badDataFormat"
    with pytest.raises(ValueError, match="unknown PKIFailureInfo"):
        CmpRejected("noSuchBit", "x")


def test_answers_to_unreadable_requests_are_well_formed() -> None:
    der = messages.response(None, "error", messages.error_body(CmpRejected("badDataFormat", "x")), None, None)
    answer, _ = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    assert answer["body"].getName() == "error" and not answer["protection"].isValue


def _certificate(key: ec.EllipticCurvePrivateKey, ends_in: timedelta) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + ends_in)
            .sign(key, hashes.SHA256()))  # fmt: skip


def test_a_responder_is_renewed_within_30_days_of_its_end_unless_its_ca_ends_first() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(key, timedelta(days=3000))
    assert not _due(_certificate(key, timedelta(days=31)), ca)
    assert _due(_certificate(key, timedelta(days=29)), ca)
    assert _due(_certificate(key, timedelta(days=-1)), ca)  # expired: renewed as well
    ending_ca = _certificate(key, timedelta(days=10))
    capped = _certificate(key, timedelta(days=10))  # capped at its CA's end: a new one could not end later
    assert not _due(capped, ending_ca)
