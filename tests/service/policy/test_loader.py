"""The regime loader: changes applied in order, and every way a regime file can be refused."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from service.policy import RegimeInvalid, RegimeNotFound, available_regimes, load_regime

SHIPPED = Path(str(resources.files("profiles") / "policy"))

RULE = """
- id: {id}
  title: t
  match: {{operations: [card_issue]}}
  decision: deny
  reason: r
  basis: "seed #15"
"""


def _write(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _full(directory: Path, name: str = "full", ids: tuple[str, ...] = ("A", "B")) -> None:
    _write(directory, name, f"name: {name}\ndescription: d\nrules:" + "".join(RULE.format(id=i) for i in ids))


def _based(directory: Path, changes: str, base: str = "full") -> None:
    _write(directory, "prop", f"name: prop\ndescription: d\nbase: {base}\nchanges:\n{changes}")


def test_changes_apply_in_order(tmp_path: Path) -> None:
    _full(tmp_path, ids=("A", "B", "C"))
    _based(
        tmp_path,
        "- {replace: A, because: x, rule: {id: A2, title: t, match: {operations: [card_renew]},"
        " decision: allow, assurance: IAL2, reason: r, basis: b}}\n"
        "- {insert_before: C, because: y, rule: {id: N, title: t, match: {operations: [revoke]},"
        " decision: deny, reason: r, basis: b}}\n"
        "- {remove: B, because: z}\n",
    )
    regime = load_regime("prop", tmp_path)
    assert [rule.id for rule in regime.rules] == ["A2", "N", "C"]
    assert [(c.kind, c.target, c.because) for c in regime.changes] == [
        ("replace", "A", "x"),
        ("insert_before", "C", "y"),
        ("remove", "B", "z"),
    ]
    assert regime.base == "full" and regime.description == "d"
    assert available_regimes(tmp_path) == ["full", "prop"]


HEAD = "name: bad\ndescription: d\n"
ONE = RULE.format(id="A")


def _rules(old: str = "", new: str = "") -> str:
    """A one-rule regime named 'bad', with ``old`` replaced by ``new`` in its rule."""
    return HEAD + "rules:" + (ONE.replace(old, new) if old else ONE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEAD + "colour: red\nrules:" + ONE, "colour"),
        (_rules("reason: r", "reason: r\n  note: n"), "note"),
        (_rules() + ONE, "duplicate rule id 'A'"),
        (_rules("deny", "deny\n  assurance: IAL3"), "must not name an 'assurance'"),
        (_rules("deny", "deny\n  conditions: [x]"), "has no 'conditions'"),
        (_rules("deny", "allow"), "needs 'assurance'"),
        (_rules("card_issue", "card_print"), "card_print"),
        (_rules("[card_issue]", "[]"), "operations"),
        (_rules("match: {operations: [card_issue]}", "match: {operations: [revoke], channels: []}"), "channels"),
        (_rules("basis: \"seed #15\"", ""), "basis"),
        (_rules("id: A", "id: a lower"), "id"),
        (_rules("reason: r", "reason: r\n  reason: s"), "duplicate key 'reason'"),
        ("name: other\ndescription: d\nrules:" + ONE, "differs from the file name"),
        (HEAD, "either 'rules' or 'base'"),
        (HEAD + "base: full\nrules:" + ONE, "either 'rules' or 'base'"),
        (HEAD + "base: full\n", "'changes' go with 'base'"),
        ("[not, a, mapping]\n", "valid dictionary"),
        ("name: bad\n  description: : :\n", "bad.yaml"),
    ],
)  # fmt: skip
def test_invalid_full_regimes(tmp_path: Path, body: str, message: str) -> None:
    _full(tmp_path)
    _write(tmp_path, "bad", body)
    with pytest.raises(RegimeInvalid, match=message):
        load_regime("bad", tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ("- {replace: Z, because: x, rule: {id: Z, title: t, match: {operations: [revoke]}, decision: deny,"
         " reason: r, basis: b}}\n", "names rule 'Z', which does not exist"),
        ("- {remove: Z, because: x}\n", "names rule 'Z'"),
        ("- {insert_before: Z, because: x, rule: {id: N, title: t, match: {operations: [revoke]}, decision: deny,"
         " reason: r, basis: b}}\n", "names rule 'Z'"),
        ("- {insert_before: A, because: x, rule: {id: B, title: t, match: {operations: [revoke]}, decision: deny,"
         " reason: r, basis: b}}\n", "duplicate rule id 'B'"),
        ("- {remove: A}\n", "because"),
        ("- {remove: A, because: x, colour: red}\n", "colour"),
        ("- {rename: A, because: x}\n", "tag"),
        ("[]\n", "changes"),
    ],
)  # fmt: skip
def test_invalid_changes(tmp_path: Path, changes: str, message: str) -> None:
    _full(tmp_path)
    _based(tmp_path, changes)
    with pytest.raises(RegimeInvalid, match=message):
        load_regime("prop", tmp_path)


def test_base_must_exist(tmp_path: Path) -> None:
    _based(tmp_path, "- {remove: A, because: x}\n", base="missing")
    with pytest.raises(RegimeInvalid, match="base 'missing' does not exist"):
        load_regime("prop", tmp_path)


def test_base_must_not_have_a_base(tmp_path: Path) -> None:
    _full(tmp_path)
    _write(tmp_path, "middle", "name: middle\ndescription: d\nbase: full\nchanges:\n- {remove: A, because: x}\n")
    _based(tmp_path, "- {remove: B, because: x}\n", base="middle")
    with pytest.raises(RegimeInvalid, match="itself based on 'full'"):
        load_regime("prop", tmp_path)


def test_a_regime_cannot_be_its_own_base(tmp_path: Path) -> None:
    _write(tmp_path, "prop", "name: prop\ndescription: d\nbase: prop\nchanges:\n- {remove: A, because: x}\n")
    with pytest.raises(RegimeInvalid, match="names itself"):
        load_regime("prop", tmp_path)


@pytest.mark.parametrize("name", ["missing", "../current-2022", "Current-2022", ""])
def test_unknown_regime(tmp_path: Path, name: str) -> None:
    _full(tmp_path)
    with pytest.raises(RegimeNotFound):
        load_regime(name, tmp_path)


def test_shipped_regimes_still_load_from_a_copy(tmp_path: Path) -> None:
    target = tmp_path / "policy"
    shutil.copytree(SHIPPED, target)
    assert [load_regime(name, target).rules for name in available_regimes(target)] == [
        load_regime(name).rules for name in available_regimes()
    ]
