"""Private-key material scanner for the security suite: finds PEM private-key blocks and DER private keys.

``scan_bytes`` looks for

1. PEM private-key armour of any kind (``-----BEGIN [...] PRIVATE KEY-----``: PKCS#8, RSA, EC, DSA,
   ENCRYPTED, OPENSSH, ...);
2. DER: at every offset where a SEQUENCE starts (0x30 followed by a short length or a long form 0x81/0x82/0x83)
   the TLV of exactly the declared length is handed to ``cryptography``'s ``load_der_private_key``; a chunk
   that parses (or is recognised as an *encrypted* PKCS#8 key) is a finding;
3. the same DER check on every long base64 run (a key stored base64-encoded in JSON, SQL or a log).

Only chunks whose TLV fits in the data and is at least ``MIN_DER_KEY`` bytes are tried. That is 48, not a
round 100: the smallest PKCS#8 private keys (Ed25519, X25519) are 48 bytes. Findings name the source, the
offset and the kind, never the bytes, so a failing assertion cannot print key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_der_private_key

PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{64,}(?:[\r\n]+[A-Za-z0-9+/]{4,})*={0,2}")
MIN_DER_KEY = 48
_LONG_FORM = {0x81: 1, 0x82: 2, 0x83: 3}


@dataclass(frozen=True)
class Finding:
    """Where private key material was found (never the material itself)."""

    source: str
    offset: int
    kind: str

    def __str__(self) -> str:
        return f"{self.source} @ {self.offset}: {self.kind}"


def der_tlv_length(data: bytes, offset: int) -> int | None:
    """Total length (header + content) of the SEQUENCE TLV starting at ``offset``, or None if not one."""
    if data[offset] != 0x30 or offset + 1 >= len(data):
        return None
    first = data[offset + 1]
    if first < 0x80:
        return 2 + first
    width = _LONG_FORM.get(first)
    if width is None or offset + 2 + width > len(data):
        return None
    return 2 + width + int.from_bytes(data[offset + 2 : offset + 2 + width], "big")


def _der_kind(chunk: bytes) -> str | None:
    try:
        key = load_der_private_key(chunk, password=None)
    except TypeError as exc:
        # cryptography recognised an EncryptedPrivateKeyInfo and wants a password: still key material.
        return "encrypted private key (DER)" if "encrypted" in str(exc) else None
    except (ValueError, UnsupportedAlgorithm):
        return None
    return f"{type(key).__name__.lstrip('_')} (DER)"


def scan_der(data: bytes, source: str) -> list[Finding]:
    """Every offset at which a DER SEQUENCE parses as a private key."""
    findings: list[Finding] = []
    offset = data.find(0x30)
    while offset != -1:
        total = der_tlv_length(data, offset)
        if total is not None and MIN_DER_KEY <= total <= len(data) - offset:
            kind = _der_kind(data[offset : offset + total])
            if kind is not None:
                findings.append(Finding(source, offset, kind))
        offset = data.find(0x30, offset + 1)
    return findings


def scan_bytes(data: bytes, source: str = "<bytes>") -> list[Finding]:
    """PEM private-key blocks, raw DER private keys, and DER private keys inside base64 runs."""
    findings = [Finding(source, m.start(), f"PEM {m.group(1).decode()} block") for m in PEM_PRIVATE_KEY.finditer(data)]
    findings += scan_der(data, source)
    for match in BASE64_RUN.finditer(data):
        text = re.sub(rb"\s+", b"", match.group(0))
        text = text[: len(text) - len(text) % 4] if not text.endswith(b"=") else text
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            continue
        inner = scan_der(decoded, f"{source} (base64 run at {match.start()})")
        findings += [Finding(f.source, f.offset, f"{f.kind} in base64") for f in inner]
    return findings


def scan_text(text: str, source: str) -> list[Finding]:
    return scan_bytes(text.encode("utf-8", errors="surrogateescape"), source)


def scan_tree(root: Path) -> tuple[list[Finding], int]:
    """Scan every regular file under ``root`` (symlinks not followed). Returns findings and files scanned."""
    findings: list[Finding] = []
    scanned = 0
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        findings += scan_bytes(path.read_bytes(), str(path.relative_to(root)))
        scanned += 1
    return findings, scanned
