"""`koshin serve` on the embedded default, driven as an operator and an integrator would: the CLI for actors
and the registry, curl-like HTTP for the API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import require_softhsm
from tests.support.cli import KOSHIN, Cli
from tests.support.registry import REGISTRY

# Runs `koshin` on the embedded SoftHSM without the softhsm fixture: a token test all the same.
pytestmark = pytest.mark.hsm


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, str]]:
    require_softhsm()
    cli = Cli(tmp_path_factory.mktemp("serve") / "home")
    port = _free_port()
    cli.env["KOSHIN_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = (cli.home.parent / "serve.log").open("w")
    server = subprocess.Popen([KOSHIN, "serve", "--port", str(port)], env=cli.env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail("koshin serve did not become healthy")
        assert server.poll() is None, (cli.home.parent / "serve.log").read_text()[-2000:]
        yield cli, base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_serve_initialises_the_embedded_default_and_prints_the_docs_url(served: tuple[Cli, str]) -> None:
    cli, base = served
    assert (cli.home / "koshin.db").exists() and (cli.home / "tokens").is_dir()
    assert f"{base}/docs" in (cli.home.parent / "serve.log").read_text()
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "koshin"


def test_operator_commands_then_the_api(served: tuple[Cli, str], tmp_path: Path) -> None:
    cli, base = served
    document = tmp_path / "registry.json"
    document.write_text(json.dumps(REGISTRY, ensure_ascii=False))
    imported = json.loads(cli.ok("registry", "import", str(document)))
    assert imported["residents_created"] + imported["residents_updated"] == 1

    out = cli.ok("actors", "add", "--role", "municipal_staff", "--municipality", "452017", "--name", "counter-1")
    token = next(line.split()[1] for line in out.splitlines() if line.startswith("token "))
    assert token.startswith("ksn_")
    assert token not in (cli.home / "koshin.db").read_bytes().decode(errors="ignore")  # stored hashed only

    headers = {"Authorization": f"Bearer {token}"}
    event = httpx.post(f"{base}/v1/proofing-events", headers=headers, json={
        "resident_number": "MZK-0001", "operation": "cert_issue", "channel": "counter_in_person",
        "evidence": ["photo_id_document", "resident_register_match"]})  # fmt: skip
    assert event.status_code == 201, event.text
    assert event.json()["decision"]["assurance_level"] == "IAL3"

    shown = json.loads(cli.ok("policy", "show", "--json"))
    assert "current-2022" in json.dumps(shown)
    evaluated = json.loads(cli.ok("policy", "evaluate", "--operation", "card_renew", "--channel",
                                  "online_face_match", "--role", "holder_app", "--json"))  # fmt: skip
    assert evaluated["allowed"] is False

    assert "intact" in cli.ok("audit", "verify")
    assert "invalid" in cli.fails("actors", "add", "--role", "wizard").lower()


def _token_file(cli: Cli, tmp_path: Path, role: str) -> Path:
    out = cli.ok("actors", "add", "--role", role, "--municipality", "452017", "--name", f"{role}-cli")
    path = tmp_path / f"{role}.token"
    path.write_text(next(line.split()[1] for line in out.splitlines() if line.startswith("token ")))
    return path


def test_station_phone_and_kiosk_from_the_command_line(served: tuple[Cli, str], tmp_path: Path) -> None:
    cli, base = served
    document = tmp_path / "registry.json"
    document.write_text(json.dumps(REGISTRY, ensure_ascii=False))
    cli.ok("registry", "import", str(document))
    for kind, name in (("station", "st1"), ("card", "card-a"), ("phone", "phone-a")):
        assert f"made {kind} {name}" in cli.ok("devices", "make", "--kind", kind, "--name", name)
    assert "already exists" in cli.fails("devices", "make", "--kind", "card", "--name", "card-a")
    listed = {d["name"]: d["kind"] for d in json.loads(cli.ok("devices", "list"))}
    assert listed == {"st1": "station", "card-a": "card", "phone-a": "phone", "koshin-maker": "maker"}  # made for it
    makers = x509.load_pem_x509_certificates((cli.home / "device-makers.pem").read_bytes())
    assert [m.subject.rfc4514_string() for m in makers] == ["CN=koshin-maker Key Attestation Root,O=koshin-maker"]
    staff = _token_file(cli, tmp_path, "municipal_staff")

    renewed = json.loads(cli.ok("station", "renew-card", "--url", base, "--token-file", str(staff), "--station", "st1",
                                "--card", "card-a", "--resident", "MZK-0001", "--card-number", "C0000002",
                                "--replaces-card", "C0000001", "--signature-password", "ICHIRO2026",
                                "--auth-pin", "2580"))  # fmt: skip
    assert renewed["rule"] and set(renewed["certificates"]) == {"signature", "user-authentication"}
    assert all(c["key_origin"] == "station" for c in renewed["certificates"].values())

    serial = renewed["certificates"]["signature"]["serial"]
    headers = {"Authorization": f"Bearer {staff.read_text().strip()}"}
    card_cert = tmp_path / "card-sign.pem"
    card_cert.write_text(httpx.get(f"{base}/v1/certificates/{serial}", headers=headers).json()["certificate_pem"])
    holder = _token_file(cli, tmp_path, "holder_app")
    enrolled = json.loads(cli.ok("phone", "enroll", "--url", base, "--token-file", str(holder), "--phone", "phone-a",
                                 "--card", "card-a", "--card-certificate", str(card_cert),
                                 "--card-password", "ICHIRO2026", "--device-id", "phone-a-001"))  # fmt: skip
    assert enrolled["decision_rule_id"] == "P11" and len(enrolled["serials"]) == 2
    phone_auth = tmp_path / "phone-auth.pem"
    phone_auth.write_text(httpx.get(f"{base}/v1/certificates/{enrolled['serials'][1]}", headers=headers)
                          .json()["certificate_pem"])  # fmt: skip
    rekeyed = json.loads(cli.ok("phone", "renew", "--url", base, "--token-file", str(holder), "--phone", "phone-a",
                                "--credential", "user-authentication", "--certificate", str(phone_auth)))  # fmt: skip
    assert rekeyed["replaces"] == enrolled["serials"][1] and rekeyed["level"] == "IAL3"

    kiosk = _token_file(cli, tmp_path, "kiosk")
    reset_args = ["kiosk", "reset-pin", "--url", base, "--token-file", str(kiosk), "--card", "card-a",
                  "--resident", "MZK-0001", "--credential", "signature", "--new-pin", "NEWPASS2027"]  # fmt: skip
    both_forgotten = cli.fails(*reset_args)
    assert "P10" in both_forgotten and "counter" in both_forgotten
    reset = cli.ok(*reset_args, "--other-pin", "2580")
    assert "rule P8" in reset
