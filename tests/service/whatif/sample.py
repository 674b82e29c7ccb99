"""A hand-made ``WhatIf`` for the plot and report tests: three regimes, two fiscal years, a sweep, routes and
assumptions with Japanese text, and a reason carrying markup that the report must escape."""

from __future__ import annotations

from service.whatif.result import Assumption, Measured, RegimeYear, Route, SweepPoint, WhatIf

REGIMES = ["current-2022", "proposal-280", "proposal-90"]
YEARS = ["FY2024", "FY2025"]
HOSTILE = '<script>alert("x")</script>'

ASSUMPTIONS = [
    Assumption(
        "minutes.card_renew", 15.0, "min", "seed #280 【参考】: 窓口における一人当たりの手続きに要する時間 15分(申請)"
    ),
    Assumption("counters", 10.0, "desks", "counter desks open for card work at once; not in the seed", assumed=True),
    Assumption("uptake.kiosk_face_match", 0.2, "share", "share who would renew at a kiosk if allowed", assumed=True),
    Assumption("days.kiosk_face_match", 365.0, "days", "kiosks open every day (domain brief §2.5)"),
    Assumption("post_office", "delegated", "", "郵便局への事務委託 & <b>not bold</b>", assumed=True),
]

ROUTES = {
    "current-2022": [
        Route("card_renew", "counter_in_person", True, "CUR-COUNTER", "IAL3", "対面での本人確認 (face to face)",
              "公的個人認証法 第3条"),
        Route("card_renew", "kiosk_face_match", False, "CUR-NO-KIOSK", None, HOSTILE, "seed #280 1st answer"),
    ],
    "proposal-280": [
        Route("card_renew", "counter_in_person", True, "P280-COUNTER", "IAL3", "face to face at the counter", "#280"),
        Route("card_renew", "kiosk_face_match", True, "P280-KIOSK", "IAL2", "顔認証 at a kiosk", "#280 支障の解決策"),
    ],
    "proposal-90": [
        Route("card_renew", "outreach_in_person", True, "P90-CONTRACTOR", "IAL3", "an outreach desk", "#90"),
    ],
}  # fmt: skip


def _row(regime: str, year: str, scale: int) -> RegimeYear:
    counter = {"current-2022": 2 * scale, "proposal-280": scale + scale // 5, "proposal-90": scale + scale // 2}
    visits = counter[regime]
    others = {"kiosk_face_match": scale - visits // 2} if regime == "proposal-280" else {}
    return RegimeYear(
        regime=regime,
        fiscal_year=year,
        renewals=scale,
        counter_visits=visits,
        counter_staff_hours=visits * 0.25,
        working_days=visits * 0.25 / 77.5,
        by_channel={"counter_in_person": visits, **others},
        by_level={"IAL3": 2 * scale - 2 * sum(others.values()), **({"IAL2": 2 * others["kiosk_face_match"]}
                  if others else {})},
        certificates=2 * scale,
        peak_certificates_per_second=scale / 243 / 7.75 / 3600,
    )  # fmt: skip


def _sweep(regime: str) -> list[SweepPoint]:
    slope = {"current-2022": 0.0, "proposal-280": 0.6, "proposal-90": 0.3}[regime]
    return [SweepPoint(regime, "FY2025", u / 4, 25_000 * (1 - slope * u / 4)) for u in range(5)]


def sample() -> WhatIf:
    return WhatIf(
        scenario="miyazaki",
        title="Miyazaki City's card renewal wave (test)",
        municipality="宮崎市 (Miyazaki City)",
        regimes=list(REGIMES),
        fiscal_years=list(YEARS),
        assumptions=list(ASSUMPTIONS),
        routes={regime: list(routes) for regime, routes in ROUTES.items()},
        rows=[_row(regime, year, scale) for year, scale in zip(YEARS, (12_167, 50_066), strict=True)
              for regime in REGIMES],
        sweep=[point for regime in REGIMES for point in _sweep(regime)],
        sweep_year="FY2025",
        measured=[Measured("proposal-280", 500, 1000, 12.5, 80.0, {"counter_in_person": 300, "kiosk_face_match": 200},
                           holders=250, by_level={"IAL2": 400, "IAL3": 600}, fiscal_year="FY2025")],
    )  # fmt: skip
