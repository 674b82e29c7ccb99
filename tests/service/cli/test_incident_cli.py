"""``koshin incident`` as an operator runs it on a fresh home: ``init`` and ``sample``, then select, suspend,
report and release the sample's signature certificates, and bad input as one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import require_softhsm
from tests.support.cli import Cli


def _status(cli: Cli, issuer: str) -> set[tuple[str, str | None]]:
    rows = json.loads(cli.ok("ca", "list", "--json"))
    services = ("cmp-responder", "tls-server")  # never part of an incident
    return {(str(r["status"]), r.get("revocation_reason")) for r in rows
            if r["issuer"] == issuer and r["profile"] not in services}  # fmt: skip


def test_an_incident_from_the_command_line(tmp_path: Path) -> None:
    require_softhsm()
    cli = Cli(tmp_path / "home")
    cli.ok("init")
    cli.ok("sample")
    selected = cli.ok("incident", "select", "sample-flaw", "--ca", "signature", "--key-origin", "station")
    assert "certificates issued or on hold" in selected
    suspended = cli.ok("incident", "suspend", "sample-flaw", "--ca", "signature")
    assert "suspend: " in suspended and "rule REVOKE-CA" in suspended and "shard" in suspended
    assert _status(cli, "signature") == {("revoked", "certificateHold")}
    assert "suspend: 0 certificates" in cli.ok("incident", "suspend", "sample-flaw")  # resumes: nothing left
    report = json.loads(cli.ok("incident", "report", "sample-flaw", "--json"))
    current = next(r for r in report if r["regime"] == "current-2022" and not r["on_hold"])
    assert current["card_rule"] == "P12" and current["counter_holders"] == current["cards"] >= 1
    cli.ok("incident", "release", "sample-flaw")
    assert _status(cli, "signature") == {("issued", None)}
    assert "was defined with" in cli.fails("incident", "suspend", "sample-flaw", "--ca", "user-authentication")
    assert "not an incident name" in cli.fails("incident", "select", "../x", "--ca", "signature")
