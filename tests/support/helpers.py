"""Small helpers that drive tools nobody here wrote (openssl, pkilint's CLI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def openssl() -> str:
    path = shutil.which("openssl")
    assert path is not None, "openssl is required (Debian package openssl)"
    return path


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
    return path


def openssl_verify(leaf: Path, root: Path, untrusted: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run([openssl(), "verify", "-CAfile", str(root), "-untrusted", str(untrusted), *extra, str(leaf)])


def pkilint_errors(cert: Path) -> str:
    """pkilint's own CLI at ERROR threshold: empty output and exit 0 mean no ERROR or FATAL finding."""
    tool = Path(sys.executable).parent / "lint_pkix_cert"
    result = run([str(tool), "lint", "-s", "ERROR", str(cert)])
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.strip() if result.returncode else ""
