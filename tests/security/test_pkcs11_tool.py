"""Cross-check with OpenSC's pkcs11-tool, which nobody here wrote: it must list every private key on the
target token as sensitive, always sensitive, never extractable and local, and none as extractable.

pkcs11-tool 0.23 prints, per private key::

    Private Key Object; RSA
      label:      sec-rsa2048-root
      ID:         7e59...
      Usage:      sign
      Access:     sensitive, always sensitive, never extractable, local

pkcs11-tool takes the PIN only as ``--pin`` (it reads an interactive PIN from the terminal, not stdin), so
the PIN is visible in the process list for the second this test runs; on a shared host against a real token,
run the suite where nobody else can list processes. The PIN never appears in an assertion message.
Run: ``.venv/bin/pytest tests/security/test_pkcs11_tool.py`` (see test_key_attributes.py for real tokens).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from pkcs11 import Attribute, ObjectClass

from hsm import TokenSession
from tests.security.target import Target, require_tool

REQUIRED_ACCESS = {"sensitive", "always sensitive", "never extractable", "local"}


@dataclass
class ListedKey:
    header: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def access(self) -> set[str]:
        return {flag.strip() for flag in self.fields.get("Access", "").split(",") if flag.strip()}


def parse_private_keys(stdout: str) -> list[ListedKey]:
    """Blocks of ``pkcs11-tool --list-objects`` output that start with ``Private Key Object``."""
    keys: list[ListedKey] = []
    current: ListedKey | None = None
    for line in stdout.splitlines():
        if line and not line[0].isspace():
            current = ListedKey(line.strip()) if line.startswith("Private Key Object") else None
            if current is not None:
                keys.append(current)
        elif current is not None and ":" in line:
            name, value = line.split(":", 1)
            current.fields[name.strip()] = value.strip()
    return keys


def test_parser_reads_the_documented_format() -> None:
    sample = (
        "Private Key Object; EC\n  label:      k\n  Access:     sensitive, extractable, local\nCertificate Object\n"
    )
    (key,) = parse_private_keys(sample)
    assert key.fields["label"] == "k" and key.access == {"sensitive", "extractable", "local"}


def test_pkcs11_tool_lists_every_private_key_as_non_extractable(target: Target, target_session: TokenSession) -> None:
    tool = require_tool("pkcs11-tool")
    with target_session.locked() as raw:
        expected = sorted(str(o[Attribute.LABEL]) for o in raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    command = [tool, "--module", target.module, "--token-label", target.token_label, "--login", "--pin", target.pin]
    result = subprocess.run(
        [*command, "--list-objects", "--type", "privkey"],
        env=target.child_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # Only plain ints and strings in assertions: pytest would render ``result`` with its argv, PIN included.
    returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    del result, command
    assert returncode == 0, f"pkcs11-tool failed (exit {returncode}): {stderr[-2000:]}"
    listed = parse_private_keys(stdout)
    assert listed, f"pkcs11-tool listed no private key:\n{stdout[-2000:]}"
    assert sorted(k.fields.get("label", "") for k in listed) == expected, "pkcs11-tool and python-pkcs11 disagree"
    violations = [
        f"{k.fields.get('label')!r} ({k.header}): Access is {k.fields.get('Access')!r}"
        for k in listed
        if not REQUIRED_ACCESS.issubset(k.access) or "extractable" in k.access
    ]
    assert not violations, "\n  ".join(["pkcs11-tool reports:", *violations])
