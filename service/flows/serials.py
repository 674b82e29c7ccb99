"""Serial numbers as koshin prints and accepts them (REST paths, ``koshin ca revoke``)."""

from __future__ import annotations

from service.errors import InvalidSerial


def parse_serial(text: str) -> int:
    """Serials as koshin prints them: hex, optionally with colons or a 0x prefix; positive, at most 20 octets."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise InvalidSerial(f"serial {text!r} is not hexadecimal") from None
    if value <= 0 or value.bit_length() > 160:
        raise InvalidSerial(f"serial {text!r} is not a positive number of at most 20 octets")
    return value
