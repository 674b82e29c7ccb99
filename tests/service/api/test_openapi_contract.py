"""The OpenAPI document tells the truth: schemathesis (``--checks all``, every phase, a fixed seed) against a live
``koshin serve`` with a token per role finds nothing. Each operation is called with the token of a role it
admits (its ``x-koshin-roles``): the walk's operations by the Miyazaki clerk, the others rotated so that every
role's token is used; public and protocol operations go without one, as their clients do. Also: the
document's own promises (every status of the problem table documented somewhere, every error as
application/problem+json, roles and links) checked directly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.problems import MEDIA_TYPE, PROBLEMS
from service.policy.model import Role
from tests.conftest import require_softhsm
from tests.support.served import MIYAZAKI, RESIDENT, Served

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
ROOT = Path(__file__).resolve().parents[3]
SEED = 20261203
EXAMPLES = 10
OTHER = "452025"  # 都城市: the other municipality's staff work there
EXTRA_REGISTRY = {"municipalities": [
    {"code": OTHER, "name": "都城市", "prefecture": "宮崎県"},
    # the boundary codes schemathesis tries first, so generated residents have somewhere to live
    {"code": "00000", "name": "試験町", "prefecture": "宮崎県"},
    {"code": "000000", "name": "試験村", "prefecture": "宮崎県"},
]}  # fmt: skip
HOME_OF = {Role.MUNICIPAL_STAFF: MIYAZAKI, Role.FISCAL_YEAR_STAFF: MIYAZAKI, Role.OTHER_MUNICIPALITY_STAFF: OTHER}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_softhsm()
    server = Served.embedded(tmp_path_factory.mktemp("contract"))
    server.setup()
    extra = server.cli.home.parent / "extra.json"
    extra.write_text(json.dumps(EXTRA_REGISTRY, ensure_ascii=False), encoding="utf-8")
    server.cli.ok("registry", "import", str(extra))
    for role in Role:
        args = ["actors", "add", "--role", role.value, "--name", f"contract-{role.value}"]
        if role in HOME_OF:
            args += ["--municipality", HOME_OF[role]]
        if role is Role.HOLDER_APP:
            args += ["--resident", RESIDENT]
        server.tokens[role.value] = re.findall(r"^token (\S+)$", server.cli.ok(*args), re.MULTILINE)[0]
    server.start()
    yield server
    server.stop()


def _document(served: Served) -> dict[str, Any]:
    answer = httpx.get(f"{served.base}/openapi.json", timeout=30)
    assert answer.status_code == 200
    return dict(answer.json())


# The operations of the walk (a resident, its proofing, the certificate or card issued on it, its revocation) go
# to the Miyazaki clerk, who may do each of them, so the stateful phase gets past the policy to their logic; every
# other operation rotates over the roles it admits, least used first, so every role's token is used.
WALK = frozenset({"create_resident", "get_resident", "patch_resident", "add_card", "create_proofing_event",
                  "create_certificate", "create_card_issuance", "revoke_certificate", "card_lost"})  # fmt: skip


def _assignments(document: dict[str, Any]) -> dict[str, str]:
    """operationId -> the role whose token calls it."""
    admitted = {op["operationId"]: op["x-koshin-roles"] for item in document["paths"].values()
                for op in item.values() if op.get("x-koshin-roles")}  # fmt: skip
    out = {op: "municipal_staff" for op, roles in admitted.items() if op in WALK and "municipal_staff" in roles}
    used = Counter(out.values())
    rest = {op: roles for op, roles in admitted.items() if op not in out}
    options = Counter(r for roles in rest.values() for r in roles)  # a role with fewer operations goes first
    for op, roles in sorted(rest.items(), key=lambda item: (len(item[1]), item[0])):
        out[op] = min(roles, key=lambda r: (used[r], options[r], r))
        used[out[op]] += 1
    return out


def _config(tmp: Path, served: Served, assignments: dict[str, str]) -> Path:
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        'database = "none"',
        "[checks.negative_data_rejection]",  # 413: the request-size limit, a deployment setting
        "expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]",
        "[checks.positive_data_acceptance]",  # 403/404/409: the policy or the state forbids it
        'expected-statuses = ["2xx", 401, 403, 404, 409, 413, 429]',
    ]
    for operation, role in sorted(assignments.items()):
        lines += ["[[operations]]", f'include-operation-id = "{operation}"',
                  f'headers = {{ Authorization = "Bearer {served.tokens[role]}" }}']  # fmt: skip
    config = tmp / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_schemathesis_finds_nothing_with_a_token_per_role(served: Served, tmp_path: Path) -> None:
    document = _document(served)
    assignments = _assignments(document)
    assert set(assignments.values()) == {r.value for r in Role}  # every role's token is used
    config = _config(tmp_path, served, assignments)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks", "PYTHONPATH": str(ROOT),
           "NO_COLOR": "1", "COLUMNS": "160"}  # fmt: skip
    run = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(config), "run", f"{served.base}/openapi.json", "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    summary = output[output.find("SUMMARY") :]
    assert run.returncode == 0, output[-12000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", summary), summary  # the phase ran and found nothing
    cases = re.search(r"(\d+) generated", summary)
    assert cases is not None and int(cases.group(1)) > 500, summary
    print(output[output.find("WARNINGS") :])  # the count of cases, the phases and what stayed out of reach


def test_every_problem_of_the_table_is_documented_as_problem_json(served: Served) -> None:
    document = _document(served)
    documented: set[tuple[str, str]] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path != "/healthz":
                    assert set(response["content"]) == {MEDIA_TYPE}, (method, path, status)
                    assert response["content"][MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
                    documented |= {(status, slug) for slug in re.findall(r"`([a-z-]+)`", response["description"])}
    for _, status, slug, _ in PROBLEMS:
        assert (str(status), slug) in documented, slug
    assert "HTTPValidationError" not in json.dumps(document)


def test_roles_security_and_links_are_in_the_document(served: Served) -> None:
    document = _document(served)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["estBasic"]["scheme"] == "basic"
    revoke = document["paths"]["/v1/certificates/{serial}/revoke"]["post"]
    assert revoke["security"] == [{"bearer": []}]
    assert revoke["x-koshin-roles"] == ["ca_operator", "fiscal_year_staff", "municipal_staff", "post_office_staff"]
    assert document["paths"]["/.well-known/est/simpleenroll"]["post"]["security"] == [{"estBasic": []}]
    assert "x-koshin-protection" in document["paths"]["/.well-known/cmp/p/{profile}"]["post"]
    assert document["paths"]["/crl/{ca}.crl"]["get"]["security"] == []
    links = document["paths"]["/v1/proofing-events"]["post"]["responses"]["201"]["links"]
    assert links["IssueCertificate"]["operationId"] == "create_certificate"
    issued = document["paths"]["/v1/certificates"]["post"]["responses"]["201"]["links"]
    assert issued["RevokeCertificate"]["parameters"] == {"serial": "$response.body#/serial"}
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
