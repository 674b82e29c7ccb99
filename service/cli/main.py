"""Entry point of ``koshin``. Every known error becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

import typer
from cryptography import x509

from ca.errors import CaError
from devices.errors import DeviceError
from hsm import HsmError
from service.cli import (
    bench_commands,
    ca_commands,
    demo,
    device_commands,
    incident_commands,
    keys_commands,
    pdf_commands,
    policy_commands,
    sample,
    service_commands,
    whatif_commands,
)
from service.cli.context import console, errors, runtime
from service.errors import ServiceError
from service.policy.errors import PolicyError
from service.provisioning import provision
from service.whatif.errors import WhatIfError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="koshin: JPKI-style CA on a PKCS#11 token.",
)
app.add_typer(ca_commands.app, name="ca")
app.add_typer(keys_commands.app, name="keys")
app.add_typer(service_commands.actors, name="actors")
app.add_typer(service_commands.registry, name="registry")
app.add_typer(service_commands.audit, name="audit")
app.command("sample")(sample.sample)
app.command("demo")(demo.demo)
app.command("serve")(service_commands.serve)
app.add_typer(policy_commands.app, name="policy")
app.add_typer(device_commands.devices, name="devices")
app.add_typer(device_commands.station, name="station")
app.add_typer(device_commands.phone, name="phone")
app.add_typer(device_commands.kiosk, name="kiosk")
app.command("sign-pdf")(pdf_commands.sign_pdf)
app.command("verify-pdf")(pdf_commands.verify_pdf)
app.command("bench")(bench_commands.bench)
app.command("whatif")(whatif_commands.whatif)
app.add_typer(incident_commands.app, name="incident")


@app.command()
def init() -> None:
    """Create the embedded token (if needed), the CA hierarchy and the database. A second run changes nothing."""
    with runtime(create=True) as rt:
        before = {(r.role, r.name) for r in rt.repo.ca_records()}
        created = provision(rt)
        added = sorted(f"{name} ({role})" for role, name in {(r.role, r.name) for r in rt.ca_records()} - before)
        verb = "already present, nothing changed"
        if created or added:
            verb = "created" if created else f"completed: added {', '.join(added)}"
        console.print(f"CA hierarchy {verb} (token {rt.session.token_label!r}, home {rt.settings.home})")
        for record in rt.ca_records():
            cert = x509.load_der_x509_certificate(record.certificate_der)
            console.print(f"  {record.role:8} {record.name:20} {cert.subject.rfc4514_string()}")
            console.print(f"           key {record.key_uri}")


def main() -> None:
    try:
        app()
    except (HsmError, CaError, ServiceError, PolicyError, WhatIfError, DeviceError, ValueError, OSError) as exc:
        errors.print(f"koshin: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
