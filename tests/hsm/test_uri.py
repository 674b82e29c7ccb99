from __future__ import annotations

import pytest

from hsm import KeyRef
from hsm.errors import InvalidKeyUri


def test_round_trip_with_binary_id_and_reserved_characters() -> None:
    ref = KeyRef(token="koshin test;1", label="root/ca?x", key_id=bytes(range(0, 256, 17)))
    uri = ref.uri()
    assert uri.startswith("pkcs11:token=koshin%20test%3B1;object=root%2Fca%3Fx;id=%00%11")
    assert uri.endswith(";type=private")
    assert KeyRef.parse(uri) == ref


def test_parse_ignores_query_attributes() -> None:
    assert KeyRef.parse("pkcs11:token=t;object=k;id=%01?pin-source=file:/x") == KeyRef("t", "k", b"\x01")


@pytest.mark.parametrize("text", ["file:/x", "pkcs11:object=k", "pkcs11:token=t;object"])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidKeyUri):
        KeyRef.parse(text)
