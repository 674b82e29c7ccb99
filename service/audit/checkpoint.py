"""Signed checkpoints of the audit log: the value, the exact bytes the audit key signs, the published JSON line
and the signature check (with ``cryptography``, from the public key alone).

A checkpoint says "the tree held ``records`` (= ``seq``) records, the last of them with hash ``hash``, its head
being ``root``, at ``at``". Checkpoints are numbered from 1 and each carries the SHA-256 of its predecessor's
signed statement, so the stored series cannot lose a member in the middle unnoticed. The signed statement is a
fixed context line followed by canonical JSON (sorted keys, no spaces), so an off-host verifier can rebuild it
from a published line without koshin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from service.audit.merkle import leaf_hash
from service.audit.merkle import root as merkle_root
from service.db.audit_log import GENESIS
from service.db.audit_models import AuditCheckpoint
from service.errors import CheckpointMalformed

CONTEXT = b"koshin audit checkpoint v1\n"  # the signed statement's context line, the same for both versions
VERSION = 2  # 2: with the Merkle tree head ``root``; 1 (before it) is still read and verified


def key_sha256(spki_der: bytes) -> str:
    """The audit key's fingerprint: SHA-256 of its SubjectPublicKeyInfo DER, hex."""
    return hashlib.sha256(spki_der).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Checkpoint:
    number: int
    seq: int
    head_hash: str
    records: int
    at: datetime
    prev: str
    key_sha256: str
    signature: bytes = b""
    root: str | None = None  # hex RFC 9162 tree head over the leaf hashes of records 1..seq (None: version 1)

    def fields(self) -> dict[str, Any]:
        """What the signature covers."""
        fields: dict[str, Any] = {
            "v": 1 if self.root is None else VERSION,
            "number": self.number,
            "seq": self.seq,
            "hash": self.head_hash,
            "records": self.records,
            "at": _utc(self.at).isoformat(),
            "prev": self.prev,
            "key": self.key_sha256,
        }
        if self.root is not None:
            fields["root"] = self.root
        return fields

    def statement(self) -> bytes:
        """The exact bytes the audit key signs."""
        return CONTEXT + json.dumps(self.fields(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """SHA-256 of the signed statement: the next checkpoint's ``prev``."""
        return hashlib.sha256(self.statement()).hexdigest()

    def line(self) -> str:
        """The published form: one JSON object per line, the signature in ``sig`` (base64)."""
        body = {**self.fields(), "sig": base64.b64encode(self.signature).decode()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        try:
            body = json.loads(line)
            if body.get("v") not in (1, VERSION):
                raise CheckpointMalformed(f"unknown checkpoint version {body.get('v')!r}")
            if (body["v"] == VERSION) != ("root" in body):
                raise CheckpointMalformed("a version 2 checkpoint has a tree root, a version 1 checkpoint none")
            return cls(
                number=int(body["number"]),
                seq=int(body["seq"]),
                head_hash=str(body["hash"]),
                records=int(body["records"]),
                at=_utc(datetime.fromisoformat(body["at"])),
                prev=str(body["prev"]),
                key_sha256=str(body["key"]),
                signature=base64.b64decode(body["sig"], validate=True),
                root=str(body["root"]) if "root" in body else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise CheckpointMalformed(f"not a checkpoint: {exc}") from exc

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(
            number=row.number,
            seq=row.seq,
            head_hash=row.head_hash,
            records=row.records,
            at=_utc(row.at),
            prev=row.prev,
            key_sha256=row.key_sha256,
            signature=bytes(row.signature),
            root=row.tree_root,
        )

    def row(self) -> AuditCheckpoint:
        return AuditCheckpoint(
            number=self.number,
            seq=self.seq,
            head_hash=self.head_hash,
            records=self.records,
            at=self.at,
            prev=self.prev,
            key_sha256=self.key_sha256,
            signature=self.signature,
            tree_root=self.root,
        )


def record_leaves(record_hashes: Iterable[str]) -> list[bytes]:
    """The Merkle tree's leaf hashes: RFC 9162 ``leaf_hash`` of each record's 32-byte SHA-256, in order."""
    return [leaf_hash(bytes.fromhex(h)) for h in record_hashes]


def tree_root(record_hashes: Iterable[str]) -> str:
    return merkle_root(record_leaves(record_hashes)).hex()


def first_prev() -> str:
    """The ``prev`` of checkpoint 1."""
    return GENESIS


def signature_valid(spki_der: bytes, checkpoint: Checkpoint) -> bool:
    return audit_signature_valid(spki_der, checkpoint.signature, checkpoint.statement())


def audit_signature_valid(spki_der: bytes, signature: bytes, data: bytes) -> bool:
    """Verify with the public key as the token signs (hsm.signing.default_scheme): RSA PKCS#1 v1.5 with
    SHA-256; ECDSA with SHA-256 on P-256 and SHA-384 on P-384. Checkpoints and their signed notes both."""
    try:
        key = load_der_public_key(spki_der)
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            digest = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
            key.verify(signature, data, ec.ECDSA(digest))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True
