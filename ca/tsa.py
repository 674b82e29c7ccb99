"""The time-stamp authority core (RFC 3161, with RFC 5816's ESSCertIDv2): a DER TimeStampReq in, a DER
TimeStampResp out. No HTTP, no SQL.

The TSTInfo and the CMS SignedData around it are built with asn1crypto; the signed attributes are signed on the
token through the same seam as certificates, CRLs and OCSP responses (``ca.keyseam``), so the TSA key never
leaves it. A request the TSA will not stamp gets a TimeStampResp with status ``rejection`` and a failInfo bit,
never an exception: the caller always has bytes to send back.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.errors import (
    CaError,
    ExtensionRejected,
    HashAlgorithmRejected,
    NonceRejected,
    PolicyRejected,
    RequestMalformed,
    RequestUnsupported,
    TimeStampRefused,
    TsaConfigurationError,
)
from ca.keyseam import signature_hash
from ca.signing import SigningKey
from hsm import HsmError

log = logging.getLogger(__name__)

# The message-imprint hashes a request may use, with their digest sizes (RFC 3161 section 2.4.1).
ACCEPTED_HASHES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
MAX_NONCE_BITS = 160  # RFC 3161 asks for a large random number; clients send 64 bits (openssl ts)
MAX_REQUEST_OCTETS = 4096  # a TimeStampReq with a SHA-512 imprint and a large nonce is under 200 octets
SERIAL_BITS = 128


class TimeStampFailure(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """TimeStampResp without the token: asn1crypto 1.5.1 declares timeStampToken required, RFC 3161 says
    it is absent unless the status is granted."""

    _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012 - asn1crypto reads the class attribute


@dataclass(frozen=True)
class StampRequest:
    """A request that passed every check: the imprint to echo, the nonce, whether certificates are wanted."""

    message_imprint: tsp.MessageImprint
    nonce: int | None
    cert_req: bool


def parse_request(der: bytes, policy: str) -> StampRequest:
    """Check a DER TimeStampReq against what this TSA offers; raise a ``TimeStampRefused`` leaf otherwise."""
    if not der or len(der) > MAX_REQUEST_OCTETS:
        raise RequestMalformed(f"a TimeStampReq of {len(der)} octets (expected 1..{MAX_REQUEST_OCTETS})")
    try:
        request = tsp.TimeStampReq.load(der, strict=True)
        version = request["version"].native
        imprint = request["message_imprint"]
        hash_name = imprint["hash_algorithm"]["algorithm"].native
        digest = imprint["hashed_message"].native
        requested_policy = request["req_policy"].native
        nonce = request["nonce"].native
        cert_req = bool(request["cert_req"].native)
        extensions = request["extensions"].native
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise RequestMalformed(f"not a DER TimeStampReq: {exc}") from exc
    if version != "v1":
        raise RequestUnsupported(f"TimeStampReq version {version} (only v1 is defined)")
    if hash_name not in ACCEPTED_HASHES:
        raise HashAlgorithmRejected(f"hash algorithm {hash_name} (accepted: {', '.join(ACCEPTED_HASHES)})")
    if not isinstance(digest, bytes) or len(digest) != ACCEPTED_HASHES[hash_name]:
        raise RequestMalformed(f"a {hash_name} imprint must be {ACCEPTED_HASHES[hash_name]} octets")
    if requested_policy is not None and requested_policy != policy:
        raise PolicyRejected(f"policy {requested_policy} (this TSA stamps under {policy} only)")
    if extensions:
        raise ExtensionRejected("this TSA recognises no request extensions")
    if nonce is not None and not 0 < nonce < 1 << MAX_NONCE_BITS:
        raise NonceRejected(f"the nonce must be a positive integer of at most {MAX_NONCE_BITS} bits")
    return StampRequest(tsp.MessageImprint.load(imprint.dump()), nonce, cert_req)


def failure_response(refusal: TimeStampRefused) -> bytes:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [str(refusal)], "fail_info": tsp.PKIFailureInfo({refusal.fail_info})}
    )
    return bytes(TimeStampFailure({"status": status}).dump())


def _system_failure(text: str) -> bytes:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({"system_failure"})}
    )
    return bytes(TimeStampFailure({"status": status}).dump())


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def check_tsa_certificate(certificate: x509.Certificate, key: SigningKey) -> None:
    """RFC 3161 section 2.3: extendedKeyUsage id-kp-timeStamping only, critical; and the key must match."""
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TsaConfigurationError("the TSA certificate has no extendedKeyUsage") from exc
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TsaConfigurationError("the TSA certificate's EKU must be timeStamping only, and critical")
    if certificate.public_key() != key.key.public_key():
        raise TsaConfigurationError("the TSA certificate is not the certificate of the TSA token key")


@dataclass(frozen=True)
class TimeStampAuthority:
    """One TSA: its certificate, its token key, the policy it stamps under and the accuracy it claims.
    ``chain`` is sent after the TSA certificate when a request asks for certificates (the issuing CA)."""

    certificate: x509.Certificate
    key: SigningKey
    policy: str
    accuracy_seconds: int
    chain: tuple[x509.Certificate, ...] = ()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        check_tsa_certificate(self.certificate, self.key)

    def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for any input: granted with a token, or rejection with a failInfo."""
        try:
            request = parse_request(request_der, self.policy)
        except TimeStampRefused as refusal:
            log.info("time-stamp request refused (%s): %s", refusal.fail_info, refusal)
            return failure_response(refusal)
        try:
            token = self.stamp(request)
        except (HsmError, CaError) as exc:
            log.error("time-stamping failed on the token: %s", exc)
            return _system_failure("the time-stamp could not be signed")
        response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        return bytes(response.dump())

    def stamp(self, request: StampRequest) -> cms.ContentInfo:
        """The time-stamp token (a CMS ContentInfo holding SignedData over a TSTInfo)."""
        info = self.tst_info(request)
        return cms.ContentInfo({"content_type": "signed_data", "content": self._signed_data(info, request.cert_req)})

    def tst_info(self, request: StampRequest) -> tsp.TSTInfo:
        tsa_cert = _asn1(self.certificate)
        fields: dict[str, object] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": request.message_imprint,
            "serial_number": secrets.randbits(SERIAL_BITS) or 1,
            "gen_time": self.clock().astimezone(UTC).replace(microsecond=0),
            "accuracy": {"seconds": self.accuracy_seconds},
            "tsa": asn1_x509.GeneralName({"directory_name": tsa_cert.subject}),
        }
        if request.nonce is not None:
            fields["nonce"] = request.nonce
        return tsp.TSTInfo(fields)

    def _signed_data(self, info: tsp.TSTInfo, cert_req: bool) -> cms.SignedData:
        digest_name = signature_hash(self.key.algorithm).name  # sha256, or sha384 with a P-384 key
        tsa_cert = _asn1(self.certificate)
        content = cms.EncapsulatedContentInfo({"content_type": "tst_info", "content": info})
        signed_attrs = _signed_attributes(hashlib.new(digest_name, info.dump()).digest(), tsa_cert)
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {"issuer_and_serial_number": {"issuer": tsa_cert.issuer, "serial_number": tsa_cert.serial_number}}
                ),
                "digest_algorithm": {"algorithm": digest_name},
                "signed_attrs": signed_attrs,
                "signature_algorithm": self._signature_algorithm(digest_name),
                "signature": self._sign(signed_attrs.dump()),
            }
        )
        certificates = [tsa_cert, *(_asn1(c) for c in self.chain)] if cert_req else None
        data: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [{"algorithm": digest_name}],
            "encap_content_info": content,
            "signer_infos": [signer],
        }
        if certificates:
            data["certificates"] = certificates
        return cms.SignedData(data)

    def _signature_algorithm(self, digest_name: str) -> dict[str, str]:
        if isinstance(self.key.key, rsa.RSAPrivateKey):
            return {"algorithm": "rsassa_pkcs1v15"}
        return {"algorithm": f"{digest_name}_ecdsa"}

    def _sign(self, data: bytes) -> bytes:
        """Sign the DER SET OF signed attributes on the token."""
        hash_algorithm = signature_hash(self.key.algorithm)
        if isinstance(self.key.key, rsa.RSAPrivateKey):
            return self.key.key.sign(data, padding.PKCS1v15(), hash_algorithm)
        return self.key.key.sign(data, ec.ECDSA(hash_algorithm))


def _signed_attributes(message_digest: bytes, tsa_cert: asn1_x509.Certificate) -> cms.CMSAttributes:
    """content-type, message-digest and signing-certificate-v2 (RFC 5816: ESSCertIDv2, SHA-256 of the TSA
    certificate, with its issuer and serial), in DER order: a SET OF is sorted by the members' encodings."""
    cert_id = tsp.ESSCertIDv2(
        {
            "cert_hash": hashlib.sha256(tsa_cert.dump()).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName({"directory_name": tsa_cert.issuer})],
                "serial_number": tsa_cert.serial_number,
            },
        }
    )
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [message_digest]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{"certs": [cert_id]}]}),
    ]
    return cms.CMSAttributes(sorted(attributes, key=lambda attribute: bytes(attribute.dump())))
