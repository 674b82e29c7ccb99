"""PKCS#11 URIs (RFC 7512) naming key objects on a token."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from hsm.errors import InvalidKeyUri

_SAFE = "-._~:[]@!$'()*+,="  # RFC 7512 pchar minus the attribute separators ';' and '&'


@dataclass(frozen=True)
class KeyRef:
    """Where a key lives: token label plus the object's label and CKA_ID."""

    token: str
    label: str
    key_id: bytes

    def uri(self, object_type: str = "private") -> str:
        return (
            f"pkcs11:token={quote(self.token, safe=_SAFE)};object={quote(self.label, safe=_SAFE)}"
            f";id={quote(self.key_id, safe='')};type={object_type}"
        )

    def __str__(self) -> str:
        return self.uri()

    @classmethod
    def parse(cls, uri: str) -> KeyRef:
        if not uri.startswith("pkcs11:"):
            raise InvalidKeyUri(f"not a PKCS#11 URI: {uri!r}")
        path = uri[len("pkcs11:") :].split("?", 1)[0]
        attrs: dict[str, bytes] = {}
        for part in filter(None, path.split(";")):
            name, sep, value = part.partition("=")
            if not sep:
                raise InvalidKeyUri(f"malformed attribute {part!r} in {uri!r}")
            attrs[name] = unquote_to_bytes(value)
        try:
            return cls(token=attrs["token"].decode(), label=attrs["object"].decode(), key_id=attrs.get("id", b""))
        except KeyError as exc:
            raise InvalidKeyUri(f"{uri!r} lacks the {exc.args[0]!r} attribute") from exc
