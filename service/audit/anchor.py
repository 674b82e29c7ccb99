"""The audit key on the token and the checkpoints it signs, stored in the database and appended to a file.

The key pair ``<prefix>audit`` (the CA key algorithm, koshin's standard template: sensitive, never extractable,
sign only) is made once by ``provision_audit_key`` in ``Runtime.init_hierarchy``; a key already under that label
is used only if it passes the key rule (hsm.key_rules), since a key someone imported could be known outside the
token. Its public half is exported to ``KOSHIN_HOME/audit/audit-key.pem`` for publication; the private half never
leaves the token. Checkpoints go to the ``audit_checkpoint`` table and to ``KOSHIN_HOME/audit/checkpoints.jsonl``
(one line each, appended and synced), which operators copy off the host.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from hsm import KeyAlgorithm, TokenSession
from hsm.key_rules import audit_entry
from hsm.signing import SignatureScheme, default_scheme
from service.audit.checkpoint import Checkpoint, first_prev, key_sha256, tree_root
from service.audit.integration import integrate_pending
from service.audit.note import TreeHead, signed_note
from service.db.audit_store import AuditStore
from service.errors import (
    AuditKeyMissing,
    AuditKeyUnsound,
    ChainRewound,
    CheckpointNumberTaken,
    NothingToCheckpoint,
)

if TYPE_CHECKING:
    from service.runtime import Runtime

_ATTEMPTS = 3  # two writers numbering the same checkpoint: the loser renumbers


def audit_key_label(rt: Runtime) -> str:
    return f"{rt.settings.key_label_prefix}audit"


def audit_directory(rt: Runtime) -> Path:
    return rt.settings.home / "audit"


def ensure_audit_key(session: TokenSession, label: str, algorithm: KeyAlgorithm) -> bytes:
    """Generate the audit key pair unless the token has a sound one under ``label``. Returns its SPKI DER."""
    if session.has_key(label):
        problems = [v for info in session.key_objects() if info.label == label
                    for v in audit_entry(info).violations]  # fmt: skip
        if problems:
            raise AuditKeyUnsound(f"key {label!r} on the token breaks the key rule: {'; '.join(problems)}")
    else:
        session.generate_keypair(algorithm, label)
    return session.public_key_der(label)


def provision_audit_key(rt: Runtime) -> bytes:
    """The installation's audit key (``koshin init`` and every start), its public key exported for publication."""
    spki_der = ensure_audit_key(rt.session, audit_key_label(rt), rt.settings.ca_key_algorithm)
    _export_public_key(audit_directory(rt) / "audit-key.pem", spki_der)
    return spki_der


def public_key_pem(spki_der: bytes) -> bytes:
    return load_der_public_key(spki_der).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _export_public_key(path: Path, spki_der: bytes) -> None:
    pem = public_key_pem(spki_der)
    if path.exists() and path.read_bytes() == pem:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_bytes(pem)
    scratch.replace(path)


def append_line(path: Path, line: str) -> None:
    """Append one line and sync it; an exclusive lock keeps the lines of several processes whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class AuditAnchor:
    """Makes checkpoints: reads the committed head, signs on the token, stores the row, appends the line."""

    session: TokenSession
    label: str
    store: AuditStore
    file: Path
    origin: str = "koshin/audit"  # the log's name in its C2SP checkpoint notes

    @property
    def note_file(self) -> Path:
        """The newest checkpoint as a C2SP signed note (``koshin audit note``), beside the JSON-lines file."""
        return self.file.with_name("checkpoint.note")

    def public_key_der(self) -> bytes:
        if not self.session.has_key(self.label):
            raise AuditKeyMissing(
                f"the audit key {self.label!r} is not on the token yet: run `koshin init` (or start the service)"
            )
        return self.session.public_key_der(self.label)

    def pending(self) -> int:
        """Records in the tree since the newest checkpoint."""
        position = self.store.audit_position()
        return position.tree.size - (position.last.seq if position.last else 0)

    def checkpoint(self) -> Checkpoint:
        """Integrate every pending record, then sign the tree (even when the newest checkpoint already covers
        it: a fresh time). An operator's checkpoint covers everything appended before it was asked for."""
        integrate_pending(self.store)
        made = self._make(only_if_advanced=False)
        if made is None:
            raise NothingToCheckpoint("the audit log is empty: nothing to checkpoint")
        return made

    def checkpoint_if_advanced(self) -> Checkpoint | None:
        """Sign the tree if it grew since the newest checkpoint; None otherwise (the sequencer's schedule)."""
        return self._make(only_if_advanced=True)

    def _make(self, *, only_if_advanced: bool) -> Checkpoint | None:
        """Nothing is locked: a checkpoint vouches for the tree as integrated, and appends never wait for it."""
        spki_der = self.public_key_der()
        fingerprint = key_sha256(spki_der)
        scheme = default_scheme(self.session.algorithm_of(self.label))
        for attempt in range(_ATTEMPTS):
            position = self.store.audit_position()
            tree, last = position.tree, position.last
            if tree.size == 0 or tree.last_hash is None:
                return None
            if last is not None and last.seq > tree.size:
                raise ChainRewound(
                    f"the tree holds {tree.size} records but checkpoint {last.number} signed {last.seq}: "
                    "not signing a rewound log (run `koshin audit verify`)"
                )
            if only_if_advanced and last is not None and last.seq == tree.size:
                return None
            previous = Checkpoint.from_row(last) if last else None
            unsigned = Checkpoint(
                number=previous.number + 1 if previous else 1,
                seq=tree.size,
                head_hash=tree.last_hash,
                records=tree.size,  # leaf indexes are dense from 0 (service.db.audit_log.verify checks it)
                at=datetime.now(UTC).replace(microsecond=0),
                prev=previous.digest() if previous else first_prev(),
                key_sha256=fingerprint,
                root=tree.root or tree_root(self.store.record_hashes(tree.size)),  # None only before integration
            )
            signed = replace(unsigned, signature=self.session.sign(self.label, unsigned.statement(), scheme))
            try:
                self.store.store_checkpoint(signed.row())
            except CheckpointNumberTaken:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            append_line(self.file, signed.line())
            self._write_note(signed, scheme, spki_der)
            return signed
        raise AssertionError("unreachable")

    def _write_note(self, checkpoint: Checkpoint, scheme: SignatureScheme, spki_der: bytes) -> None:
        assert checkpoint.root is not None  # noqa: S101 - every checkpoint made here is version 2
        head = TreeHead(self.origin, checkpoint.seq, bytes.fromhex(checkpoint.root))

        def sign(data: bytes) -> bytes:
            return self.session.sign(self.label, data, scheme)

        text = signed_note(head, self.origin, spki_der, sign)
        scratch = self.note_file.with_suffix(".tmp")
        scratch.write_text(text, encoding="utf-8")
        scratch.replace(self.note_file)

    def stored(self, after: int = 0) -> list[Checkpoint]:
        return [Checkpoint.from_row(r) for r in self.store.checkpoints(after)]


def audit_anchor(rt: Runtime) -> AuditAnchor:
    origin = f"{urlsplit(rt.settings.public_base_url).netloc or 'koshin'}/audit"
    return AuditAnchor(rt.session, audit_key_label(rt), rt.repo, audit_directory(rt) / "checkpoints.jsonl", origin)
