"""``koshin keys audit``: every key object on the token with its attributes; exit 1 on a violation."""

from __future__ import annotations

from typing import Annotated

import typer

from hsm.key_rules import audit_keys
from service.cli.context import console, print_json, runtime

app = typer.Typer(no_args_is_help=True, help="Inspect keys on the token.")

_COLUMNS = ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "LOCAL", "SIGN", "DECRYPT")


@app.command()
def audit(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List key objects and check each private key against koshin's key-handling rule."""
    with runtime() as rt:
        entries = audit_keys(rt.session)
        token = rt.session.token_label
    bad = [e for e in entries if e.violations]
    if as_json:
        print_json(
            {
                "token": token,
                "keys": [
                    {
                        "label": e.key.label,
                        "id": e.key.key_id.hex(),
                        "class": e.key.object_class,
                        "key_type": e.key.key_type,
                        "attributes": e.key.attributes,
                        "violations": list(e.violations),
                    }
                    for e in entries
                ],
                "violations": sum(len(e.violations) for e in entries),
            }
        )
    else:
        console.print(f"key objects on token {token!r}")
        for e in entries:
            attrs = " ".join(f"{n}={_mark(e.key.attributes.get(n))}" for n in _COLUMNS if n in e.key.attributes)
            verdict = "; ".join(e.violations) if e.violations else "ok"
            console.print(f"  {e.key.label:36} {e.key.object_class:11} {e.key.key_type:3} {attrs} -> {verdict}")
        console.print(f"{len(entries)} key objects, {len(bad)} with violations")
    if bad:
        raise typer.Exit(1)


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
