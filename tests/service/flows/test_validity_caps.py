"""The validity caps of the brief §2.2 through the service: a foreign resident's card and both certificates end
at the stay limit; a signature certificate never outlives the user-authentication certificate it goes with
(the holder's live one on the same card, or the one issued beside it in a card's or a phone's pair)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

from sqlalchemy import update
from sqlmodel import Session, col, select

from ca.holder import Holder
from ca.issuance import CertificateAuthority, IssuanceIntent, IssueRequest, PreparedCertificate
from ca.profiles import AssuranceLevel
from ca.validity import AUTH_CERT_RULE, JST, STAY_LIMIT_RULE, end_of_jst_day
from service.db.models import CertificateRecord
from service.flows.pipeline import Order, prepare_orders
from tests.support.api_world import Api, load_pem


def _record(api: Api, serial: str) -> CertificateRecord:
    with Session(api.runtime.repo.engine) as session:
        return session.exec(select(CertificateRecord).where(CertificateRecord.serial_hex == serial)).one()


def test_a_foreign_residents_card_and_certificates_end_at_the_stay_limit(api: Api) -> None:
    limit = datetime.now(JST).date().replace(day=1) + timedelta(days=800)  # well before the 10-year card rule
    resident = api.new_resident(stay_limit=limit.isoformat())
    shown = api.get(f"/v1/residents/{resident}", "municipal_staff").json()
    assert shown["stay_limit"] == limit.isoformat()
    assert shown["cards"][0]["expires_on"] == limit.isoformat()  # the card ends at the stay limit
    for certificate_type in ("signature", "user-authentication"):
        issued = api.issue(resident, certificate_type)
        assert issued.status_code == 201, issued.text
        cert = load_pem(issued.json()["certificate_pem"])
        assert cert.not_valid_after_utc == end_of_jst_day(limit), certificate_type
        assert _record(api, issued.json()["serial"]).validity_rule == STAY_LIMIT_RULE


def test_a_resident_without_a_stay_limit_keeps_the_birthday_rule(api: Api) -> None:
    resident = api.new_resident()
    assert api.get(f"/v1/residents/{resident}", "municipal_staff").json()["stay_limit"] is None
    issued = api.issue(resident, "user-authentication").json()
    assert _record(api, issued["serial"]).validity_rule == "5th birthday"


def test_a_new_stay_limit_by_patch_is_returned(api: Api) -> None:
    resident = api.new_resident()
    limit = date(2030, 3, 31)
    patched = api.client.patch(f"/v1/residents/{resident}", json={"stay_limit": limit.isoformat()},
                               headers=api.as_("municipal_staff"))  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["resident"]["stay_limit"] == "2030-03-31"
    assert patched.json()["revoked_serials"] == []  # not one of the four basic attributes
    card = patched.json()["resident"]["cards"][0]
    assert card["expires_on"] == "2030-03-31"  # the active card ends at the new period of stay
    extended = api.client.patch(f"/v1/residents/{resident}", json={"stay_limit": "2045-03-31"},
                                headers=api.as_("municipal_staff"))  # fmt: skip
    assert extended.json()["resident"]["cards"][0]["expires_on"] == "2031-04-12"  # the age rule's end again
    audited, after = [], 0
    while page := api.get(f"/v1/audit?after={after}&limit=1000", "auditor").json():  # the shared world's whole log
        audited += [r for r in page if r["action"] == "card.validity"]
        after = page[-1]["seq"]
    assert [r["details"]["expires_on"] for r in audited if r["object"] == card["number"]] == [
        "2030-03-31",
        "2031-04-12",
    ]


def test_a_signature_certificate_is_capped_by_the_live_auth_certificate(api: Api) -> None:
    resident = api.new_resident()
    auth = api.issue(resident, "user-authentication").json()
    earlier = (datetime.now(UTC) + timedelta(days=400)).replace(microsecond=0)  # as if issued years ago
    with Session(api.runtime.repo.engine) as session:
        session.exec(update(CertificateRecord).where(col(CertificateRecord.serial_hex) == auth["serial"])
                     .values(not_after=earlier))  # fmt: skip
        session.commit()
    signature = api.issue(resident, "signature")
    assert signature.status_code == 201, signature.text
    assert load_pem(signature.json()["certificate_pem"]).not_valid_after_utc == earlier
    assert _record(api, signature.json()["serial"]).validity_rule == AUTH_CERT_RULE
    revoked = api.post(f"/v1/certificates/{auth['serial']}/revoke", "municipal_staff",
                       {"reason": "cessationOfOperation", "evidence": ["photo_id_document"]})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    uncapped = api.issue(resident, "signature").json()  # no live auth certificate left: the birthday rule
    assert _record(api, uncapped["serial"]).validity_rule == "5th birthday"


# --- the pair: prepare_orders, with a CA core that records what it was asked ---------------------------------


@dataclass
class _Core:
    ends: dict[str, datetime]
    asked: list[IssueRequest]

    def prepare(self, request: IssueRequest) -> PreparedCertificate:
        self.asked.append(request)
        not_after, rule = self.ends[request.profile], "5th birthday"
        if request.auth_not_after is not None and request.auth_not_after < not_after:
            not_after, rule = request.auth_not_after, AUTH_CERT_RULE
        intent = IssuanceIntent(serial=len(self.asked), issuer=request.profile, profile=request.profile, subject="",
                                key_algorithm="P-256", assurance=request.assurance, not_before=datetime.now(UTC),
                                not_after=not_after, validity_rule=rule, linted=False)  # fmt: skip
        return PreparedCertificate(intent=intent, builder=None, linted_tbs=None, lint=None)  # type: ignore[arg-type]


def _order(profile: str) -> Order:
    holder = {"name": "宮崎 花子", "address": "宮崎県宮崎市", "prefecture": "宮崎県", "municipality": "宮崎市",
              "date_of_birth": "1988-04-12", "sex": "2"}  # fmt: skip
    return Order.holder(IssueRequest(profile, None, Holder.model_validate(holder), AssuranceLevel.IAL3))


def test_the_signature_certificate_of_a_pair_never_outlives_its_auth_certificate() -> None:
    auth_end = datetime(2029, 2, 17, 14, 59, 59, tzinfo=UTC)  # e.g. the user-authentication CA ends sooner
    core = _Core({"signature": datetime(2030, 4, 12, 14, 59, 59, tzinfo=UTC), "user-authentication": auth_end}, [])
    prepared = prepare_orders(cast(CertificateAuthority, core), [_order("signature"), _order("user-authentication")])
    assert [p.intent.profile for p in prepared] == ["signature", "user-authentication"]  # the plan's order
    assert [r.profile for r in core.asked] == ["user-authentication", "signature"]  # auth prepared first
    assert (prepared[0].intent.not_after, prepared[0].intent.validity_rule) == (auth_end, AUTH_CERT_RULE)


def test_a_signature_certificate_alone_is_not_capped_by_the_pipeline() -> None:
    core = _Core({"signature": datetime(2030, 4, 12, 14, 59, 59, tzinfo=UTC)}, [])
    (only,) = prepare_orders(cast(CertificateAuthority, core), [_order("signature")])
    assert only.intent.validity_rule == "5th birthday" and core.asked[0].auth_not_after is None
