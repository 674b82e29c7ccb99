"""Each package's errors live in its errors.py and derive from the package's root, so a caller can catch a
package's refusals with one class and the problem table maps them in one place."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOTS = {
    "hsm.errors": "HsmError",
    "ca.errors": "CaError",
    "devices.errors": "DeviceError",
    "service.errors": "ServiceError",
    "service.pdf.errors": "ServiceError",
    "service.protocols.cmp.errors": "ServiceError",
    "service.policy.errors": "PolicyError",
    "service.whatif.errors": "WhatIfError",
}
PACKAGES = ("hsm", "ca", "devices", "service")


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def _is_exception_class(node: ast.ClassDef) -> bool:
    if _base_names(node) == {"BaseException"}:  # a control-flow signal (SIGTERM), not an error
        return False
    return any(name.endswith(("Error", "Exception", "Refused", "Invalid")) for name in _base_names(node))


@pytest.mark.parametrize("module_name", sorted(ROOTS))
def test_every_error_derives_from_its_package_root(module_name: str) -> None:
    module = importlib.import_module(module_name)
    root_module = module_name if ROOTS[module_name] != "ServiceError" else "service.errors"
    root = getattr(importlib.import_module(root_module), ROOTS[module_name])
    errors = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == module_name
    ]
    assert errors, f"{module_name} defines no error"
    strays = [error.__name__ for error in errors if not issubclass(error, root)]
    assert strays == [], f"{module_name}: not a {root.__name__}: {strays}"


def test_every_errors_module_has_a_declared_root() -> None:
    found = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("errors.py")
    }
    assert found == set(ROOTS)


def test_no_public_error_is_defined_outside_an_errors_module() -> None:
    """A leaf error in the module that raises it is invisible to the problem table's reader; private helper
    exceptions (a leading underscore) and BaseException signals are the module's own business."""
    strays = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "errors.py" or "migrations" in path.parts:
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef) and _is_exception_class(node) and not node.name.startswith("_"):
                    strays.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert strays == []


def test_the_check_sees_a_stray_error() -> None:
    """The AST test above would pass vacuously if it recognised no class; prove it flags one."""
    node = ast.parse("class Stray(ValueError):\n    pass\n").body[0]
    assert isinstance(node, ast.ClassDef)
    assert _is_exception_class(node)
    signal = ast.parse("class Stop(BaseException):\n    pass\n").body[0]
    assert isinstance(signal, ast.ClassDef)
    assert not _is_exception_class(signal)
