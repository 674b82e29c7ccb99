"""Serial numbers as koshin prints and accepts them (REST paths, ``koshin ca revoke``)."""

from __future__ import annotations

import re

from service.errors import InvalidSerial

# Hex, optionally with a 0x prefix and colons between digits; positive (a non-zero digit) and at most 20 octets
# (40 digits after the leading zeros). The OpenAPI document gives this very pattern, so a serial the schema
# admits is one this parses.
SERIAL_PATTERN = r"^(?:0[xX])?[0:]*[1-9a-fA-F](?::?[0-9a-fA-F]){0,39}$"
_SERIAL = re.compile(SERIAL_PATTERN.removesuffix("$") + r"\Z")
_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]+(?::[0-9a-fA-F]+)*\Z")


def parse_serial(text: str) -> int:
    """Serials as koshin prints them: hex, optionally with colons or a 0x prefix; positive, at most 20 octets."""
    if not _SERIAL.match(text):
        if not _HEX.match(text):
            raise InvalidSerial(f"serial {text!r} is not hexadecimal (optionally 0x-prefixed, colons between digits)")
        raise InvalidSerial(f"serial {text!r} is not a positive number of at most 20 octets")
    return int(text.lower().removeprefix("0x").replace(":", ""), 16)
