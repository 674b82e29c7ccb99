"""``koshin devices|station|phone|kiosk``: blank device stock for the embedded SoftHSM, and the three clients.

Device tokens live in the embedded SoftHSM under KOSHIN_HOME. Transport PINs are random per device and kept
in ``KOSHIN_HOME/secrets/devices/<name>.json`` (mode 0600); the issuer's SO PIN, used by stations for
transport keys and by kiosks for resets, in ``secrets/devices-so.pin``. Development defaults, like the rest
of the embedded default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devices.attestation import DeviceMaker
from devices.capabilities import load_token_profile
from devices.device import Device
from devices.kiosk import Kiosk
from devices.phone import Phone
from devices.station import Station
from hsm import TokenSession, admin
from service.cli.context import console, print_json
from service.errors import ConfigurationError
from service.settings import Settings

devices = typer.Typer(
    no_args_is_help=True, help="Blank device stock (station, card, phone) in the embedded token store."
)
station = typer.Typer(no_args_is_help=True, help="The counter station: card issuance and renewal.")
phone = typer.Typer(no_args_is_help=True, help="The smartphone: enrollment with the card's signature key.")
kiosk = typer.Typer(no_args_is_help=True, help="The kiosk: PIN reset with face match and the other PIN.")

Url = Annotated[str, typer.Option(help="Base URL of the koshin service.")]
TokenFile = Annotated[Path, typer.Option(help="File holding the actor's API token.")]


def embedded_home() -> tuple[Settings, Path, str]:
    settings = Settings()
    if not settings.embedded:
        raise ConfigurationError("device stock lives in the embedded SoftHSM (unset KOSHIN_PKCS11_MODULE)")
    module = admin.find_softhsm()
    if module is None:
        raise ConfigurationError("libsofthsm2.so not found: install the Debian package softhsm2")
    conf = admin.write_softhsm_conf(settings.home)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return settings, conf, module


def _secrets(settings: Settings) -> Path:
    return settings.home / "secrets"


def _so_pin(settings: Settings) -> str:
    path = _secrets(settings) / "devices-so.pin"
    if not path.exists():
        admin.write_private_file(path, admin.random_pin() + "\n")
    return path.read_text().strip()


def _record(settings: Settings, name: str) -> dict[str, Any]:
    path = _device_file(settings, name)
    if not path.exists():
        raise ConfigurationError(f"no device {name!r}: make it with `koshin devices make`")
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def stored_device(name: str) -> tuple[Device, dict[str, Any], Settings]:
    settings, _, module = embedded_home()
    record = _record(settings, name)
    return Device(module, name, load_token_profile(record["kind"]), settings.home / "devices"), record, settings


def _http(url: str, token_file: Path) -> httpx.Client:
    token = token_file.read_text().strip()
    return httpx.Client(base_url=url, timeout=60.0, headers={"Authorization": f"Bearer {token}"})


ATTESTING_KINDS = ("phone", "next-gen-card")  # secure elements that generate keys, and say so
DEFAULT_MAKER = "koshin-maker"


@devices.command("make")
def make(
    kind: Annotated[str, typer.Option(help="station, card, phone, next-gen-card or maker.")],
    name: Annotated[str, typer.Option(help="Device name; its tokens are <name>-<credential>.")],
    maker: Annotated[
        str,
        typer.Option(
            help="phone, next-gen-card: the maker whose root certifies its attestation keys (made when missing)."
        ),
    ] = DEFAULT_MAKER,
) -> None:
    """Make one blank device: a token per credential, random transport PINs kept under secrets/devices/. A
    maker gets an attestation root on its token (trusted through KOSHIN_HOME/device-makers.pem); a phone or
    next-gen card gets an attestation key in each credential, certified by its maker at manufacture."""
    settings, conf, module = embedded_home()
    stock = [(kind, name)]
    if kind in ATTESTING_KINDS and not _device_file(settings, maker).exists():
        stock.insert(0, ("maker", maker))
    for each_kind, each_name in stock:
        _make_tokens(settings, conf, each_kind, each_name)  # every token before this process loads the module
    for each_kind, each_name in stock:
        if each_kind == "maker":
            _make_maker(settings, module, each_name)
    if kind in ATTESTING_KINDS:
        _manufacture(settings, module, name, maker)
    console.print(f"made {kind} {name}" + (f" (attestation by {maker})" if kind in ATTESTING_KINDS else ""))


def _device_file(settings: Settings, name: str) -> Path:
    return _secrets(settings) / "devices" / f"{name}.json"


def _make_tokens(settings: Settings, conf: Path, kind: str, name: str) -> None:
    profile = load_token_profile(kind)
    path = _device_file(settings, name)
    if path.exists():
        raise ConfigurationError(f"device {name!r} already exists")
    longest = max(len(f"{name}-{cred}") for cred in profile.credentials)
    if longest > 32:
        raise ConfigurationError(f"device name {name!r} too long: token labels are at most 32 characters")
    pins = {cred: _transport_pin(spec.pin_pattern) for cred, spec in profile.credentials.items()}
    admin.make_device_tokens(conf, name, pins, _so_pin(settings))
    admin.write_private_file(path, json.dumps({"kind": kind, "transport_pins": pins}))
    console.print(f"made tokens {', '.join(f'{name}-{c}' for c in pins)}")


def _update(settings: Settings, name: str, **fields: Any) -> None:
    path = _device_file(settings, name)
    admin.write_private_file(path, json.dumps({**json.loads(path.read_text()), **fields}))


def _make_maker(settings: Settings, module: str, name: str) -> None:
    pin = _record(settings, name)["transport_pins"]["attestation"]
    with TokenSession(module, f"{name}-attestation", pin) as token:
        root = DeviceMaker.create(token, name).certificate.public_bytes(Encoding.PEM)
    _update(settings, name, root_pem=root.decode())
    with (settings.home / "device-makers.pem").open("ab") as bundle:  # what the service trusts
        bundle.write(root)


def _manufacture(settings: Settings, module: str, name: str, maker_name: str) -> None:
    maker_record, record = _record(settings, maker_name), _record(settings, name)
    root = x509.load_pem_x509_certificate(maker_record["root_pem"].encode())
    certificates: dict[str, str] = {}
    with TokenSession(module, f"{maker_name}-attestation", maker_record["transport_pins"]["attestation"]) as token:
        maker = DeviceMaker(token, root)
        for credential, pin in record["transport_pins"].items():
            with TokenSession(module, f"{name}-{credential}", pin) as device:
                certificate = maker.certify(device, f"{name}-{credential}")
            certificates[credential] = certificate.public_bytes(Encoding.PEM).decode()
    _update(settings, name, maker=maker_name, attestation=certificates)


def attestation_of(record: dict[str, Any]) -> dict[str, x509.Certificate]:
    """The device attestation certificates a phone's record holds (none for a device made before them)."""
    return {c: x509.load_pem_x509_certificate(pem.encode()) for c, pem in record.get("attestation", {}).items()}


def _transport_pin(pattern: str) -> str:
    import secrets
    import string

    if "0-9]{4}" in pattern:
        return "".join(secrets.choice(string.digits) for _ in range(4))
    if "A-Z0-9" in pattern:
        return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    return admin.random_pin(16)


@devices.command("list")
def list_devices() -> None:
    """The devices made so far (names and kinds; PINs are in the secrets files only)."""
    settings, _, _ = embedded_home()
    folder = _secrets(settings) / "devices"
    rows = [{"name": p.stem, "kind": json.loads(p.read_text())["kind"]} for p in sorted(folder.glob("*.json"))]
    print_json(rows)


@station.command("renew-card")
def renew_card(
    url: Url,
    token_file: TokenFile,
    station_name: Annotated[str, typer.Option("--station", help="Station device name.")],
    card_name: Annotated[str, typer.Option("--card", help="Blank card device to personalise.")],
    resident: Annotated[str, typer.Option(help="Resident number.")],
    card_number: Annotated[str, typer.Option(help="Number printed on the new card.")],
    signature_password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="New signature password.")],
    auth_pin: Annotated[str, typer.Option(prompt=True, hide_input=True, help="New 4-digit auth PIN.")],
    replaces_card: Annotated[str | None, typer.Option(help="The card this one replaces.")] = None,
) -> None:
    """Counter issuance/renewal: in-person proofing, keys made at the station, injected into the new card."""
    station_device, station_record, settings = stored_device(station_name)
    card, card_record, _ = stored_device(card_name)
    client = Station(_http(url, token_file), station_device,
                     station_record["transport_pins"]["operator"], _so_pin(settings))  # fmt: skip
    result = client.renew_card(
        resident_number=resident,
        card=card,
        card_number=card_number,
        transport_pins=card_record["transport_pins"],
        replaces_card=replaces_card,
        holder_pins={"signature": signature_password, "user-authentication": auth_pin},
    )
    print_json({"card": result.card_number, "rule": result.proofing["decision"]["rule_id"],
                "certificates": {c: {k: v[k] for k in ("serial", "assurance_level", "key_origin")}
                                 for c, v in result.certificates.items()},
                "revoked": result.revoked_serials})  # fmt: skip


@phone.command("enroll")
def enroll(
    url: Url,
    token_file: TokenFile,
    phone_name: Annotated[str, typer.Option("--phone", help="Phone device name.")],
    card_name: Annotated[str, typer.Option("--card", help="The holder's card device.")],
    card_certificate: Annotated[Path, typer.Option(help="The card's signature certificate (PEM).")],
    card_password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Card signature password.")],
    device_id: Annotated[str, typer.Option(help="The phone's device id.")],
) -> None:
    """Phone enrollment: keys made on the phone, the application signed on the card."""
    phone_device, phone_record, _ = stored_device(phone_name)
    card, _, _ = stored_device(card_name)
    client = Phone(_http(url, token_file), phone_device, phone_record["transport_pins"], device_id,
                   attestation_of(phone_record))  # fmt: skip
    result = client.enroll(card, card_password, card_certificate.read_text())
    serials = [result.answer["signature"]["serial"], result.answer["user_authentication"]["serial"]]
    print_json({k: result.answer[k] for k in ("decision_rule_id", "assurance_level")} | {"serials": serials})


@phone.command("renew")
def renew(
    url: Url,
    token_file: TokenFile,
    phone_name: Annotated[str, typer.Option("--phone", help="Phone device name.")],
    credential: Annotated[str, typer.Option(help="signature or user-authentication.")],
    certificate: Annotated[Path, typer.Option(help="The current phone certificate of that credential (PEM).")],
    out: Annotated[Path | None, typer.Option(help="Write the new certificate (PEM) here.")] = None,
) -> None:
    """Re-key a phone certificate: a new key on the phone, the request signed with the current one (P11-REKEY)."""
    phone_device, phone_record, _ = stored_device(phone_name)
    client = Phone(_http(url, token_file), phone_device, phone_record["transport_pins"], phone_name,
                   attestation_of(phone_record))  # fmt: skip
    answer, _ = client.renew(credential, None, certificate.read_text())
    if out is not None:
        out.write_text(answer["certificate_pem"])
    print_json({"serial": answer["serial"], "replaces": answer["replaces_serial"], "level": answer["assurance_level"]})


@kiosk.command("reset-pin")
def reset_pin(
    url: Url,
    token_file: TokenFile,
    card_name: Annotated[str, typer.Option("--card", help="The holder's card device.")],
    resident: Annotated[str, typer.Option(help="Resident number.")],
    credential: Annotated[str, typer.Option(help="signature or user-authentication: the PIN to reset.")],
    new_pin: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The new PIN.")],
    other_pin: Annotated[str | None, typer.Option(help="The OTHER credential's PIN; omit if forgotten.")] = None,
    face_matched: Annotated[bool, typer.Option(help="The face matched the chip photo.")] = True,
) -> None:
    """Kiosk PIN reset (P8/P9); with both PINs forgotten the policy sends the holder to the counter (P10)."""
    card, _, settings = stored_device(card_name)
    client = Kiosk(_http(url, token_file), _so_pin(settings))
    done = client.reset_pin(resident_number=resident, card=card, credential=credential, other_pin=other_pin,
                            face_matched=face_matched, new_pin=new_pin)  # fmt: skip
    console.print(f"{credential} PIN reset (rule {done.proofing['decision']['rule_id']})")
