"""A one-resident registry document for the command-line and served tests."""

from typing import Any

REGISTRY: dict[str, Any] = {
    "municipalities": [{"code": "452017", "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True}],
    "residents": [
        {
            "resident_number": "MZK-0001",
            "name": "宮崎 一郎",
            "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": "452017",
            "date_of_birth": "1970-05-05",
            "sex": "male",
            "cards": [{"number": "C0000001", "issued_on": "2020-10-01"}],
        }
    ],
}
