"""``koshin ca ...``: chain, issue, revoke, crl, list."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.table import Table

from ca.crl import REASONS
from ca.holder import parse_holder
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.cli.context import console, print_json, runtime
from service.registry_rules import parse_serial

app = typer.Typer(no_args_is_help=True, help="Operate the CA hierarchy.")

Reason = enum.StrEnum("Reason", {name: name for name in REASONS})  # type: ignore[misc]


class CrlIssuer(enum.StrEnum):
    signature = "signature"
    user_authentication = "user-authentication"
    root = "root"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from exc


@app.command()
def chain(out: Annotated[Path | None, typer.Option(help="Write the PEM bundle here.")] = None) -> None:
    """PEM bundle: the root and the issuing CA certificates."""
    with runtime() as rt:
        pem = b"".join(cert.public_bytes(Encoding.PEM) for cert in rt.chain())
    if out is None:
        console.out(pem.decode(), end="")
    else:
        out.write_bytes(pem)
        console.print(f"wrote {out}")


@app.command()
def issue(
    profile: Annotated[str, typer.Option(help="Certificate profile: signature or user-authentication.")],
    csr: Annotated[Path, typer.Option(help="PKCS#10 request, PEM or DER.")],
    holder: Annotated[Path, typer.Option(help="Holder record (JSON).")],
    out: Annotated[Path | None, typer.Option(help="Write the certificate (PEM) here.")] = None,
    assurance: Annotated[AssuranceLevel, typer.Option(help="Assurance of the proofing.")] = AssuranceLevel.IAL3,
) -> None:
    """Issue a holder certificate: subject and extensions come from the profile and the holder, never the CSR."""
    request = IssueRequest(
        profile=profile,
        csr=load_csr(_read(csr, "CSR")),
        holder=parse_holder(_read(holder, "holder file")),
        assurance=assurance,
    )
    with runtime() as rt:
        issued = rt.authority().issue(request, rt.repo)
    pem = issued.certificate.public_bytes(Encoding.PEM)
    if out is None:
        console.out(pem.decode(), end="")
        return
    out.write_bytes(pem)
    intent = issued.intent
    console.print(f"issued {intent.serial:040x} ({intent.profile}, {intent.assurance}) -> {out}")
    console.print(f"  subject   {intent.subject}")
    console.print(f"  validity  {intent.not_before:%Y-%m-%d %H:%M:%SZ} .. {intent.not_after:%Y-%m-%d %H:%M:%SZ}"
                  f" ({intent.validity_rule})")  # fmt: skip
    console.print(f"  lint      {'pkilint pkix: no ERROR/FATAL' if intent.linted else 'OFF (KOSHIN_LINT=false)'}")


@app.command()
def revoke(
    serial: Annotated[str, typer.Argument(help="Serial number in hex, as `koshin ca list` prints it.")],
    reason: Annotated[Reason, typer.Option(help="RFC 5280 CRLReason.")],
) -> None:
    """Revoke a holder certificate; it appears on the issuing CA's next CRL."""
    number = parse_serial(serial)
    with runtime() as rt:
        record = rt.repo.revoke(number, str(reason.value), datetime.now(UTC).replace(microsecond=0))
    console.print(f"revoked {record.serial_hex} ({record.revocation_reason}) at {record.revoked_at}")


@app.command()
def crl(
    ca: Annotated[CrlIssuer, typer.Option(help="Which CA signs the CRL.")],
    out: Annotated[Path | None, typer.Option(help="Write the DER CRL here (default: KOSHIN_HOME/crl/).")] = None,
) -> None:
    """Generate and sign a complete CRL on the token (DER)."""
    with runtime() as rt:
        revocation_list = rt.crl(ca.value)
        target = out or rt.settings.home / "crl" / f"{ca.value}.crl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(revocation_list.public_bytes(Encoding.DER))
    number = revocation_list.extensions.get_extension_for_class(x509.CRLNumber)
    console.print(f"CRL #{number.value.crl_number} of {ca.value}: {len(revocation_list)} entries -> {target}")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every holder certificate in the store."""
    with runtime() as rt:
        records = rt.repo.certificates()
    rows = [
        {
            "serial": r.serial_hex,
            "issuer": r.issuer,
            "profile": r.profile,
            "status": r.status,
            "assurance": r.assurance_level,
            "subject": r.subject,
            "not_before": r.not_before,
            "not_after": r.not_after,
            "revoked_at": r.revoked_at,
            "revocation_reason": r.revocation_reason,
        }
        for r in records
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("serial", "profile", "status", "IAL", "not after", "subject")
    for row in rows:
        table.add_row(str(row["serial"]), str(row["profile"]), str(row["status"]), str(row["assurance"]),
                      f"{row['not_after']:%Y-%m-%d}", str(row["subject"]))  # fmt: skip
    console.print(table)
