"""``koshin demo``: the whole argument of the seed, run against a live service.

Seeds a registry, renews a card at the counter (keys made at the station and injected), enrols a phone (keys
made on the phone, application signed with the card), re-keys the phone, changes an address, resets a PIN at
a kiosk, shows the refused cases, and repeats them under each proposal regime (dry run of the policy). Ends
with one table; every certificate in it is checked with `openssl verify` and the live OCSP responder. A second
table is the dry run of every ask of every proposal: one request per operation and channel of each rule the
proposal adds, built from the rule's own match, decided under current-2022 and under the proposal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from rich.table import Table

from ca.ocsp import ocsp_request_der
from devices.errors import ServiceRefused
from devices.kiosk import Kiosk
from devices.phone import Phone
from devices.station import Station, call
from service.cli.context import console
from service.cli.device_commands import attestation_of, embedded_home, make, stored_device
from service.policy.engine import decide
from service.policy.model import (
    AssuranceLevel,
    Channel,
    Decision,
    Evidence,
    HolderState,
    Operation,
    PolicyRequest,
    Role,
)
from service.policy.regime import DEFAULT_REGIME, InsertBeforeChange, Match, ReplaceChange, load_regime
from service.provisioning import provision
from service.runtime import open_runtime
from service.settings import Settings

MIYAZAKI = {"code": "452017", "name": "宮崎市", "prefecture": "宮崎県", "post_office_delegation": True}
PROPOSALS = ("proposal-15", "proposal-90", "proposal-246", "proposal-280")


@dataclass
class Row:
    flow: str
    key_made: str
    proofing: str
    decision: str
    level: str
    serial: str = "-"
    expect: str = "-"  # good | revoked | -
    checked: str = "-"
    pem: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KOSHIN_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    koshin = str(Path(sys.executable).parent / "koshin")
    server = subprocess.Popen([koshin, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the service did not start")


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60.0, headers={"Authorization": f"Bearer {token}"})


def demo(
    url: Annotated[str | None, typer.Option(help="A running koshin service; else one is started.")] = None,
) -> None:
    """Run every flow against a live service and print the side-by-side table."""
    run_id = uuid.uuid4().hex[:6].upper()
    station_name, card_name, phone_name = "demo-station", f"dc-{run_id}", f"dp-{run_id}"  # token labels <= 32
    settings, _, _ = embedded_home()
    if not (settings.home / "secrets" / "devices" / f"{station_name}.json").exists():
        make(kind="station", name=station_name)
    make(kind="card", name=card_name)
    make(kind="phone", name=phone_name)
    rt = open_runtime(Settings())
    provision(rt)
    tokens = {"ca_operator": rt.repo.add_actor(f"demo-operator-{run_id}", "ca_operator", None)[1]}
    server = None
    if url is None:
        port = _free_port()
        server, url = _start_server(port), f"http://127.0.0.1:{port}"
    try:
        rows = _run(rt, url, tokens, run_id, station_name, card_name, phone_name)
        _verify(url, rows)
    finally:
        rt.close()
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    table = Table("flow", "key made", "identity proofed", "decision (rule)", "IAL", "serial", "status", "checked",
                  title=f"koshin demo {run_id} (live regime: {settings.policy})")  # fmt: skip
    for r in rows:
        table.add_row(r.flow, r.key_made, r.proofing, r.decision, r.level, r.serial[:16], r.expect, r.checked)
    console.print(table)
    console.print(_asks_table(rt.profiles.hierarchy.assurance_policies))
    if any(r.checked.startswith("FAIL") for r in rows):
        raise typer.Exit(1)


def _run(rt: Any, url: str, tokens: dict[str, str], run_id: str, station_name: str, card_name: str,
         phone_name: str) -> list[Row]:  # fmt: skip
    with _client(url, tokens["ca_operator"]) as op:
        call(op, "POST", "/v1/registry/import", {"municipalities": [MIYAZAKI], "residents": [{
            "resident_number": f"DEMO-{run_id}", "name": "宮崎 花子", "address": "宮崎県宮崎市橘通西一丁目1番1号",
            "municipality": "452017", "date_of_birth": "1988-04-12", "sex": "female",
            "cards": [{"number": f"OLD{run_id}", "issued_on": "2021-06-01"}]}]})  # fmt: skip
    for role in ("municipal_staff", "holder_app", "kiosk", "contractor"):
        tokens[role] = rt.repo.add_actor(f"demo-{role}-{run_id}", role, "452017")[1]
    resident, rows = f"DEMO-{run_id}", []
    station_dev, station_rec, settings = stored_device(station_name)
    card, card_rec, _ = stored_device(card_name)
    so_pin = (settings.home / "secrets" / "devices-so.pin").read_text().strip()
    pins = {"signature": "HANAKO2026", "user-authentication": "2580"}
    station = Station(_client(url, tokens["municipal_staff"]), station_dev, station_rec["transport_pins"]["operator"],
                      so_pin)  # fmt: skip
    renewal = station.renew_card(resident_number=resident, card=card, card_number=f"NEW{run_id}",
                                 transport_pins=card_rec["transport_pins"], holder_pins=pins,
                                 replaces_card=f"OLD{run_id}")  # fmt: skip
    rule = renewal.proofing["decision"]["rule_id"]
    for cred, out in renewal.certificates.items():
        rows.append(Row(f"card renewal: {cred}", "station HSM, injected", "staff, counter, photo ID",
                        f"allow ({rule})", out["assurance_level"], out["serial"], "good",
                        pem=out["certificate_pem"]))  # fmt: skip
    phone_dev, phone_rec, _ = stored_device(phone_name)
    phone = Phone(_client(url, tokens["holder_app"]), phone_dev, phone_rec["transport_pins"], f"{phone_name}-id",
                  attestation_of(phone_rec))  # fmt: skip
    enrolled = phone.enroll(card, pins["signature"], renewal.certificates["signature"]["certificate_pem"])
    for key in ("signature", "user_authentication"):
        rows.append(Row(f"phone enrollment: {key}", "phone secure element", "card signature key + password",
                        f"allow ({enrolled.answer['decision_rule_id']})", enrolled.answer["assurance_level"],
                        enrolled.answer[key]["serial"], "good",
                        pem=enrolled.answer[key]["certificate_pem"]))  # fmt: skip
    renewed, _ = phone.renew("user-authentication", enrolled.key_labels["user-authentication"],
                             enrolled.answer["user_authentication"]["certificate_pem"])  # fmt: skip
    rows[-1].expect = "revoked"
    rows.append(Row("phone re-key: user_authentication", "phone secure element", "current phone key",
                    "allow (P11-REKEY)", renewed["assurance_level"], renewed["serial"], "good",
                    pem=renewed["certificate_pem"]))  # fmt: skip
    with _client(url, tokens["municipal_staff"]) as staff:
        changed = staff.patch(f"/v1/residents/{resident}", json={"address": "宮崎県宮崎市別府町3番地"}).json()
    for row in rows:
        if row.serial in changed["revoked_serials"]:
            row.expect = "revoked"
    rows.append(Row("address change", "-", "staff, registry", f"revoked {len(changed['revoked_serials'])} "
                    "signature certificates (card + phone)", "-"))  # fmt: skip
    kiosk = Kiosk(_client(url, tokens["kiosk"]), so_pin)
    reset = kiosk.reset_pin(resident_number=resident, card=card, credential="signature",
                            other_pin=pins["user-authentication"], face_matched=True,
                            new_pin="NEWPASS2027")  # fmt: skip
    rows.append(Row("kiosk: reset signature password", "-", "face match + auth PIN",
                    f"allow ({reset.proofing['decision']['rule_id']})",
                    str(reset.proofing["decision"]["assurance_level"])))  # fmt: skip
    refused = [("contractor proofing (outreach)", "contractor", Operation.CARD_RENEW, Channel.OUTREACH_IN_PERSON,
                ["photo_id_document", "resident_register_match"]),
               ("card renewal online (face + PIN)", "holder_app", Operation.CARD_RENEW, Channel.ONLINE_FACE_MATCH,
                ["auth_pin", "face_match_chip_photo", "live_face_capture"])]  # fmt: skip
    for flow, role, operation, channel, evidence in refused:
        with _client(url, tokens[role]) as http:
            try:
                event = call(http, "POST", "/v1/proofing-events", {"resident_number": resident,
                             "operation": operation.value, "channel": channel.value, "evidence": evidence})  # fmt: skip
                rows.append(Row(flow, "-", role, f"allow ({event['decision']['rule_id']})", "-"))
            except ServiceRefused as exc:
                rows.append(Row(flow, "-", role, f"deny ({exc.problem.get('rule_id')})", "-"))
        for regime in PROPOSALS:
            request = PolicyRequest(operation, channel, Role(role), "452017", "452017",
                                    frozenset(Evidence(e) for e in evidence), HolderState(age=38))  # fmt: skip
            decision = decide(request, load_regime(regime), rt.profiles.hierarchy.assurance_policies)
            verdict = f"{'allow' if decision.allowed else 'deny'} ({decision.rule_id})"
            rows.append(Row(f"  under {regime}", "station HSM, injected" if decision.allowed else "-", role,
                            verdict, decision.assurance.value if decision.assurance else "-"))  # fmt: skip
    return rows


def _verify(url: str, rows: list[Row]) -> None:
    """openssl verify against the published chain, and the live OCSP answer against the expected status."""
    with tempfile.TemporaryDirectory() as scratch:
        chain = Path(scratch) / "chain.pem"
        chain.write_bytes(httpx.get(f"{url}/v1/ca/chain").content)
        issuers = {c.subject: c for c in x509.load_pem_x509_certificates(chain.read_bytes())}
        for row in (r for r in rows if r.serial != "-"):
            cert = x509.load_pem_x509_certificate(row.pem.encode())
            leaf = Path(scratch) / f"{row.serial}.pem"
            leaf.write_bytes(cert.public_bytes(Encoding.PEM))
            verify = subprocess.run(["openssl", "verify", "-CAfile", str(chain), str(leaf)],
                                    capture_output=True, text=True, check=False)  # fmt: skip
            issuer = issuers[cert.issuer]
            ca_name = "signature" if "Signature" in issuer.subject.rfc4514_string() else "user-authentication"
            answer = ocsp.load_der_ocsp_response(httpx.post(f"{url}/ocsp/{ca_name}", content=ocsp_request_der(
                cert, issuer), headers={"content-type": "application/ocsp-request"}).content)  # fmt: skip
            status = answer.certificate_status.name.lower()
            ok = verify.returncode == 0 and status == row.expect
            row.checked = "openssl OK, OCSP " + status if ok else f"FAIL: verify={verify.returncode} OCSP {status}"


def _probes(match: Match) -> list[PolicyRequest]:
    """One request per operation and channel that ``match`` names, with the evidence, role and venue it wants."""
    evidence = frozenset({*match.evidence_all, *(match.evidence_any or ())[:1]})
    actor = "452033" if match.same_municipality is False else "452017"  # 452033: 都城市, another municipality
    roles = match.roles or (Role.HOLDER_APP,)
    venue = (match.venues or (None,))[0]
    delegated = bool(match.post_office_delegated)
    channels = match.channels or (Channel.BACK_OFFICE,)
    return [
        PolicyRequest(op, ch, _role(roles, ch), actor, "452017", evidence, HolderState(age=38), delegated, venue)
        for op in match.operations
        for ch in channels
    ]


def _role(roles: tuple[Role, ...], channel: Channel) -> Role:
    """The kiosk at a kiosk, the holder's app online, else the first role the rule names."""
    wanted = {Channel.KIOSK_FACE_MATCH: Role.KIOSK, Channel.ONLINE_FACE_MATCH: Role.HOLDER_APP}.get(channel)
    return wanted if wanted in roles else roles[0]


def _verdict(decision: Decision) -> str:
    return f"{'allow' if decision.allowed else 'deny'} ({decision.rule_id})"


def _asks_table(policy_oids: dict[AssuranceLevel, str]) -> Table:
    """Each rule a proposal adds (one ask of the seed), probed under current-2022 and under the proposal."""
    title = "the proposals' asks, decided by the policy (dry run)"
    table = Table("proposal", "ask (rule title)", "operation @ channel by role", DEFAULT_REGIME, "proposal", "IAL",
                  title=title)  # fmt: skip
    current = load_regime(DEFAULT_REGIME)
    for name in PROPOSALS:
        regime = load_regime(name)
        for change in regime.changes:
            if not isinstance(change, InsertBeforeChange | ReplaceChange):
                continue
            for probe in _probes(change.rule.match):
                after = decide(probe, regime, policy_oids)
                before = decide(probe, current, policy_oids)
                request = f"{probe.operation} @ {probe.channel} by {probe.role}"
                level = after.assurance.value if after.assurance else "-"
                table.add_row(name, change.rule.title, request, _verdict(before), _verdict(after), level)
    return table
