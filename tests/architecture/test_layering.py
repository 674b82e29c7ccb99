"""The dependency direction service -> ca -> hsm, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "hsm": {"ca", "service", "fastapi", "sqlmodel", "sqlalchemy", "cryptography.x509", "pkilint"},
    "ca": {"service", "fastapi", "sqlmodel", "sqlalchemy", "pkcs11"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


DATABASE = ("sqlmodel", "sqlalchemy")


def test_only_service_db_talks_to_the_database() -> None:
    """The house rule "only service/db opens sessions", checked on the imports: nothing else in service/ (and
    nothing in ca/ or hsm/) imports SQLModel or SQLAlchemy."""
    violations = []
    for package in ("hsm", "ca", "service"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "service" / "db"):
                continue
            violations += [
                f"{path.relative_to(ROOT)} imports {n}" for n in _imports(path) if n.split(".")[0] in DATABASE
            ]
    assert violations == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package]):
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []
