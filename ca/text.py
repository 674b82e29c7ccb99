"""The repertoire of registry text that goes into certificates (names, addresses, municipality and prefecture
names): NFC-normalised Unicode whose every character is in JIS X 0213:2004 (which contains JIS X 0208 and
ASCII; Python's ``euc_jis_2004`` codec) or in Windows-31J (``cp932``: JIS X 0208 with the NEC and IBM
extensions municipal systems exchange, which hold common name characters such as 髙 U+9AD9 that JIS X 0213
lacks).

Refused, naming the code point and why:
- C0 and C1 controls (NUL, CR, LF, TAB, ESC, DEL, U+0080-U+009F): a terminal or log reading the certificate
  would act on them;
- bidi controls (U+200E, U+200F, U+061C, U+202A-U+202E, U+2066-U+2069): they reorder what a person reads;
- other format characters (ZWJ, ZWSP, BOM/ZWNBSP, ...), private-use characters, noncharacters (U+FDD0-U+FDEF,
  U+xxFFFE/U+xxFFFF) and lone surrogates: invisible, undefined or not text;
- the characters with a meaning in a distinguished name's string form (RFC 4514: ``, + " \\ < > ; =`` and
  ``#``): no Japanese name or address needs them (the full-width forms remain), and they make a printed subject
  such as ``L=A,CN=Evil Root`` read as something it is not;
- anything else outside that repertoire (emoji, most of CJK Extension B, Hangul, ...). The real scheme
  writes such a character with a substitute (代替文字) and records the original in a separate otherName;
  koshin refuses instead, so a certificate never holds a character a JIS-based relying party cannot show.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from ca.errors import TextRefused

REPERTOIRE = "JIS X 0213:2004 or Windows-31J"
_DN_SPECIAL = frozenset(',+"\\<>;=#')
_BIDI = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


def _why(character: str) -> str | None:
    point = ord(character)
    category = unicodedata.category(character)
    if category == "Cc":
        return "is a control character"
    if point in _BIDI:
        return "is a bidirectional control"
    if 0xD800 <= point <= 0xDFFF:
        return "is a lone surrogate"
    if 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE:
        return "is a noncharacter"
    if category == "Cf":
        return "is an invisible format character"
    if category == "Co":
        return "is a private-use character"
    if character in _DN_SPECIAL:
        return "has a meaning in a distinguished name (use the full-width form)"
    for codec in ("euc_jis_2004", "cp932"):
        try:
            character.encode(codec)
        except UnicodeEncodeError:
            continue
        return None
    return f"is outside the registry repertoire ({REPERTOIRE})"


def registry_text(value: str) -> str:
    """``value`` NFC-normalised, or TextRefused naming the first character that is not allowed (white space at
    either end is not: a subject attribute that starts or ends with it prints like another one)."""
    normalised = unicodedata.normalize("NFC", value)
    if normalised != normalised.strip():
        raise TextRefused("white space at the start or the end is not allowed")
    for position, character in enumerate(normalised):
        why = _why(character)
        if why is not None:
            name = unicodedata.name(character, "unnamed")
            raise TextRefused(f"U+{ord(character):04X} ({name}) at position {position} {why}")
    return normalised


@cache
def repertoire_pattern() -> str:
    """The rule of ``registry_text`` as one regular expression, for the OpenAPI document, so a client can check
    text before it sends it: characters from the ranges of code points ``registry_text`` takes alone, no white
    space at either end. Planes 0-2 only: nothing above them is in either character set."""
    allowed: list[int] = []
    for point in range(0x30000):
        try:
            registry_text(chr(point)) if not chr(point).isspace() else registry_text(f"x{chr(point)}x")
        except TextRefused:
            continue
        allowed.append(point)
    inner = _character_class(allowed)
    edge = _character_class([p for p in allowed if not chr(p).isspace()])
    return f"^(?:{edge}(?:{inner}*{edge})?)?$"


def _character_class(points: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for point in points:
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1] = (ranges[-1][0], point)
        else:
            ranges.append((point, point))
    return "[" + "".join(_escaped(a) if a == b else f"{_escaped(a)}-{_escaped(b)}" for a, b in ranges) + "]"


def _escaped(point: int) -> str:
    character = chr(point)
    return "\\" + character if character in "\\]^-[" else character
