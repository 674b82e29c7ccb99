"""``koshin ca ...``: chain, issue, issue-cards, revoke, crl, reconcile, list."""

from __future__ import annotations

import enum
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.serialization import Encoding
from rich.progress import Progress
from rich.table import Table

from ca.crl import REASONS
from ca.holder import parse_holder
from ca.issuance import IssueRequest
from ca.keycheck import load_csr
from ca.profiles import AssuranceLevel
from service.cli.card_batch import card_batch
from service.cli.context import console, errors, operator, print_json, runtime
from service.flows.authorisation import RevocationAsk
from service.flows.issuance import issue_for_operator
from service.flows.reconciliation import reconcile as reconcile_pending
from service.flows.revocation import revoke as revoke_certificate
from service.flows.serials import parse_serial

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
        issued = issue_for_operator(rt, request)
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
    """Revoke a certificate as the CA operator (policy rule REVOKE-CA; a service certificate, REVOKE-INFRA, is
    re-keyed: new token key, new certificate); the issuing CA's CRL is published before the command returns."""
    number = parse_serial(serial)
    with runtime() as rt:
        record = revoke_certificate(rt, operator(rt), number, RevocationAsk(str(reason.value)))
        latest = rt.repo.latest_crl(record.issuer)
    console.print(f"revoked {record.serial_hex} ({record.revocation_reason}) at {record.revoked_at}")
    if latest is not None:
        console.print(f"CRL #{latest.number} of {record.issuer} lists {latest.entries} revoked certificates")


@app.command()
def crl(
    ca: Annotated[CrlIssuer, typer.Option(help="Which CA signs the CRL.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the complete DER CRL here (default: KOSHIN_HOME/crl/<ca>.crl); shards beside it, "
            "in <dir>/<ca>/<shard>.crl, or the one shard here with --shard."
        ),
    ] = None,
    shard: Annotated[int | None, typer.Option(min=0, help="Publish only this shard of a partitioned CA.")] = None,
) -> None:
    """Publish fresh CRLs, signed on the token under the publication locks (each the next number of its scope),
    and write them (DER): the complete CRL and, for a partitioned CA, every shard; or one shard (--shard)."""
    with runtime() as rt:
        shards = rt.profiles.hierarchy.crl_shards(ca.value)
        if shard is not None and shard >= shards:
            errors.print(f"{ca.value} has no CRL shard {shard} (it has {shards if shards > 1 else 'none'})")
            raise typer.Exit(2)
        if shard is None:
            rt.crl_publication.publish_partitioned(ca.value, force=True)
            scopes: list[int | None] = [*range(shards), None] if shards > 1 else [None]
        else:
            rt.crl_publication.publish(ca.value, force=True, shard=shard)
            scopes = [shard]
        stored = {scope: rt.repo.latest_crl(ca.value, scope) for scope in scopes}
        base = out.parent if out is not None and shard is None else rt.settings.home / "crl"
    for scope, record in stored.items():
        assert record is not None  # noqa: S101 - just published
        if scope is None:
            target = out or base / f"{ca.value}.crl"
        else:
            target = out if out is not None and shard is not None else base / ca.value / f"{scope}.crl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(record.crl_der)
        name = ca.value if scope is None else f"{ca.value} shard {scope}"
        console.print(f"CRL #{record.number} of {name}: {record.entries} entries -> {target}")


@app.command()
def reconcile(
    grace_seconds: Annotated[
        float | None, typer.Option(min=0, help="Only intents older than this (default KOSHIN_RECONCILE_GRACE_SECONDS).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Resolve certificate intents a crash left pending: each is recorded revoked (cessationOfOperation), so the
    CRL lists it and OCSP answers revoked; its authorisation stays spent. Prints what it did."""
    with runtime() as rt:
        grace = timedelta(seconds=grace_seconds) if grace_seconds is not None else None
        found = reconcile_pending(rt, grace)
    rows = [{"serial": r.serial_hex, "issuer": r.issuer, "profile": r.profile, "intent_at": r.created_at,
             "proofing_event": r.proofing_event_id, "status": r.status, "reason": r.revocation_reason}
            for r in found]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no pending intents to reconcile")
    for row in rows:
        console.print(f"reconciled {row['serial']} ({row['profile']}, intent {row['intent_at']}): revoked, "
                      f"{row['reason']}")  # fmt: skip


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


REQUESTS_HELP = "JSON lines, each a card request as POST /v1/card-issuances takes it (its proofing event, two CSRs)."


@app.command("issue-cards")
def issue_cards_command(
    requests: Annotated[Path, typer.Argument(help=REQUESTS_HELP)],
    batch: Annotated[int, typer.Option(min=1, max=100, help="Card requests per batch (two write transactions).")] = 100,
    out: Annotated[Path | None, typer.Option(help="Write the outcomes (JSON lines) here instead of stdout.")] = None,
) -> None:
    """A central issuing station's batch run: every card request of the file through the one pipeline, ``batch``
    at a time, with a progress bar; one JSON line per request with its status and its certificates or its problem
    document (one bad request fails alone). Exit 1 if any request failed."""
    lines = [(n, line) for n, line in enumerate(_read(requests, "card requests").decode().splitlines(), 1)
             if line.strip()]  # fmt: skip
    outcomes: list[dict[str, object]] = []
    with runtime() as rt, Progress(console=errors, transient=True) as progress:  # stdout: the JSON lines only
        task = progress.add_task("card requests", total=len(lines))
        for start in range(0, len(lines), batch):
            chunk = lines[start : start + batch]
            outcomes.extend(card_batch(rt, operator(rt), chunk))
            progress.advance(task, len(chunk))
    text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outcomes)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)  # JSON lines as they are: no console wrapping
    failed = sum(1 for o in outcomes if o["status"] != 201)
    typer.echo(f"{len(outcomes) - failed} card requests issued, {failed} failed", err=True)
    if failed:
        raise typer.Exit(1)
