"""Checkpoints in the C2SP ``tlog-checkpoint`` format: a signed note (c2sp.org/signed-note) whose text is the
log's origin, the tree size and the base64 tree head, so tools of the transparency-log ecosystem read it.

    koshin.example/audit
    1234
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — koshin.example/audit <base64(key ID || signature)>

The audit key is the token's (ECDSA on P-256 or P-384, or RSA, the CA key algorithm). ECDSA is signature type
0x02 of the signed-note specification (the transparency-dev witness format): key ID = SHA-256(SPKI DER)[:4], an
ASN.1 DER signature over the note text. RSA has no assigned type; it uses 0xff followed by the identifier
``koshin-rsa-pkcs1v15-sha256``: key ID = SHA-256(key name || 0x0A || 0xff || identifier || SPKI DER)[:4].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from service.audit.checkpoint import audit_signature_valid
from service.errors import CheckpointMalformed

RSA_IDENTIFIER = b"koshin-rsa-pkcs1v15-sha256"
_DASH = "\u2014"


@dataclass(frozen=True)
class TreeHead:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def key_id(name: str, spki_der: bytes) -> bytes:
    key = load_der_public_key(spki_der)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return hashlib.sha256(spki_der).digest()[:4]
    return hashlib.sha256(name.encode() + b"\n\xff" + RSA_IDENTIFIER + spki_der).digest()[:4]


def signed_note(head: TreeHead, name: str, spki_der: bytes, sign: Callable[[bytes], bytes]) -> str:
    """The checkpoint note, signed by ``sign`` (the token's signature over the note text)."""
    text = head.text()
    signature = base64.b64encode(key_id(name, spki_der) + sign(text.encode())).decode()
    return f"{text}\n{_DASH} {name} {signature}\n"


def open_note(note: str, name: str, spki_der: bytes) -> TreeHead:
    """The tree head of a checkpoint note whose signature by key ``name`` verifies; CheckpointMalformed if not."""
    text, separator, signatures = note.partition("\n\n")
    if not separator or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointMalformed("not a signed note: no blank line before the signatures, or a control character")
    text += "\n"
    wanted = key_id(name, spki_der)
    for line in signatures.splitlines():
        dash, _, rest = line.partition(" ")
        signer, _, encoded = rest.partition(" ")
        if dash != _DASH or signer != name:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if raw[:4] != wanted:
            continue  # another key under the same name: ignored, as the specification says
        if audit_signature_valid(spki_der, raw[4:], text.encode()):
            return _head(text)
        raise CheckpointMalformed(f"the signature of {name} does not verify (forged or altered note)")
    raise CheckpointMalformed(f"no signature of {name} with the audit key on the note")


def _head(text: str) -> TreeHead:
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        raise CheckpointMalformed("a checkpoint note is origin, tree size and tree head, one per line")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointMalformed(f"the tree head is not base64: {exc}") from exc
    return TreeHead(lines[0], int(lines[1]), root)
