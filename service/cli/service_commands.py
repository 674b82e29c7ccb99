"""``koshin serve``, ``koshin actors add``, ``koshin registry import``, ``koshin audit`` (verify, checkpoint, key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from pydantic import ValidationError

from service.audit.anchor import audit_anchor, public_key_pem
from service.audit.proofs import prove
from service.audit.verification import verify_installation
from service.cli.context import console, operator, print_json, runtime
from service.errors import NotAnchored
from service.flows.reconciliation import reconcile
from service.flows.registry import import_registry
from service.flows.registry_document import RegistryDocument
from service.policy.model import Role
from service.provisioning import provision
from service.settings import Settings

actors = typer.Typer(no_args_is_help=True, help="Manage API actors and their tokens.")
registry = typer.Typer(no_args_is_help=True, help="Municipalities, residents and cards.")
audit = typer.Typer(no_args_is_help=True, help="The audit log: its Merkle tree, checkpoints and proofs.")


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes, each with its own token session.")] = 1,
    tls: Annotated[
        bool, typer.Option(help="Serve HTTPS: stunnel with a token key and a tls-server certificate from koshin's CA.")
    ] = False,
    tls_name: Annotated[
        list[str] | None,
        typer.Option(help="Extra DNS name or IP address for the TLS certificate (repeatable; 127.0.0.1, ::1 always)."),
    ] = None,
) -> None:
    """Run the REST service (initialising the embedded default when missing)."""
    import uvicorn

    from service.api.app import create_app
    from service.api.nodelay import NoDelayH11Protocol
    from service.observability.logs import uvicorn_options
    from service.observability.metrics import share_between_workers

    settings = Settings()
    if tls:
        from service.cli.serve_tls import serve_tls

        serve_tls(settings, host, port, workers, tls_name or [])
        return
    console.print(f"koshin serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs, /redoc)")
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, http=NoDelayH11Protocol, **uvicorn_options())
        return
    share_between_workers(settings.home / "run" / f"metrics-{port}")
    with runtime(create=True) as rt:  # initialise once, before the workers race to do it
        provision(rt)
        reconcile(rt)
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=NoDelayH11Protocol,
        **uvicorn_options(),
    )


@actors.command("add")
def add_actor(
    role: Annotated[Role, typer.Option(help="The actor's role.")],
    municipality: Annotated[str | None, typer.Option(help="Municipality code the actor belongs to.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for the audit log.")] = None,
    resident: Annotated[
        str | None, typer.Option(help="holder_app only: the resident number of the one holder it acts for.")
    ] = None,
) -> None:
    """Create an actor and print its API token once (only its SHA-256 is stored). A holder app bound with
    --resident acts on that holder's cards and certificates only; an unbound one proves the holder in each
    request (the phone flows' card signature) and can act on no registry object by token alone."""
    if resident is not None and role is not Role.HOLDER_APP:
        raise typer.BadParameter("--resident binds a holder_app only", param_hint="--resident")
    with runtime() as rt:
        default = f"{role.value}-{municipality or resident or 'any'}"
        actor, token = rt.repo.add_actor(name or default, role.value, municipality, resident)
    bound = f", acts for resident {resident}" if resident else ""
    console.print(f"actor {actor.name} ({actor.role}, municipality {actor.municipality_code or '-'}{bound})")
    console.print(f"token {token}")
    console.print("the token is shown once; store it now")


@registry.command("import")
def import_file(path: Annotated[Path, typer.Argument(help="Registry JSON document.")]) -> None:
    """Create or update municipalities, residents and cards; attribute changes revoke as the API does."""
    try:
        document = RegistryDocument.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read registry document {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"registry document invalid at {where}: {first['msg']} ({exc.error_count()} errors)") from exc
    with runtime() as rt:
        result = import_registry(rt, operator(rt), document)
    print_json(result.__dict__)


@audit.command("verify")
def verify(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="An off-host copy of checkpoints.jsonl to check (default: KOSHIN_HOME/audit/checkpoints.jsonl)."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="The pinned audit public key (PEM) instead of the token's (`koshin audit key`).")
    ] = None,
) -> None:
    """Recompute the audit log (every record's hash, the Merkle tree) and check it against the signed
    checkpoints and their consistency; report the first problem (exit 1) or that it is intact."""
    pinned = _pinned_key(key) if key else None
    with runtime() as rt:
        report = verify_installation(rt, checkpoints, pinned)
    if not report.intact:
        where = f" at record {report.first_broken}" if report.first_broken is not None else ""
        console.print(f"audit log BROKEN{where}: {report.problem}", markup=False)
        raise typer.Exit(1)
    waiting = f", {report.pending} awaiting the sequencer" if report.pending else ""
    console.print(f"audit log intact: {report.records} records in the tree{waiting}", markup=False)
    if report.checkpoints:
        console.print(
            f"{report.checkpoints} signed checkpoints verified; the newest covers {report.anchored} records",
            markup=False,
        )
    else:
        console.print("no signed checkpoints yet: run `koshin audit checkpoint`", markup=False)


def _pinned_key(path: Path) -> bytes:
    try:
        public = load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path} is not a PEM public key: {exc}") from exc
    return public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@audit.command("checkpoint")
def checkpoint() -> None:
    """Integrate the pending records into the tree, sign a checkpoint of it on the token, store it, append it to
    the checkpoint file and print it (one JSON line, for publication)."""
    with runtime() as rt:
        made = audit_anchor(rt).checkpoint()
    console.out(made.line(), highlight=False)


@audit.command("prove")
def prove_record(record: Annotated[int, typer.Argument(help="The record's number (seq).")]) -> None:
    """Print an RFC 9162 inclusion proof of one record against the newest signed checkpoint covering it (JSON:
    the record's hash, its audit path, and the signed checkpoint line to check it against)."""
    with runtime() as rt:
        proof = prove(audit_anchor(rt), record)
    print_json(proof.document())


@audit.command("note")
def checkpoint_note() -> None:
    """Print the newest checkpoint as a C2SP tlog-checkpoint signed note (origin, tree size, tree head)."""
    with runtime() as rt:
        path = audit_anchor(rt).note_file
    if not path.exists():
        raise NotAnchored("no checkpoint note yet: run `koshin audit checkpoint`")
    console.out(path.read_text(encoding="utf-8").rstrip("\n"), highlight=False)


@audit.command("checkpoints")
def list_checkpoints(
    after: Annotated[int, typer.Option(help="Only checkpoints numbered above this.")] = 0,
) -> None:
    """Print the stored checkpoints, oldest first, one JSON line each (the format of checkpoints.jsonl)."""
    with runtime() as rt:
        lines = [c.line() for c in audit_anchor(rt).stored(after)]
    for line in lines:
        console.out(line, highlight=False)


@audit.command("key")
def public_key() -> None:
    """Print the audit public key (PEM): publish it, or pin it for `koshin audit verify --key`."""
    with runtime() as rt:
        spki_der = audit_anchor(rt).public_key_der()
    console.out(public_key_pem(spki_der).decode().rstrip(), highlight=False)
