"""The ``koshin`` command as a subprocess in a home of its own (no KOSHIN_* or SOFTHSM2_CONF inherited)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.helpers import run

KOSHIN = str(Path(sys.executable).parent / "koshin")


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KOSHIN_", "SOFTHSM2_CONF"))}
        self.env["KOSHIN_HOME"] = str(home)
        self.env["COLUMNS"] = "200"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([KOSHIN, *args], env=self.env, timeout=120)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"koshin {' '.join(args)}: {result.stderr}"
        return result.stdout

    def fails(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode != 0, f"koshin {' '.join(args)} should fail: {result.stdout}"
        assert "Traceback" not in result.stderr + result.stdout
        return result.stderr
