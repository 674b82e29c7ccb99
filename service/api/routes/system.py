"""Health, the active policy, and the dry-run evaluator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.api.convert import decision_out
from service.api.deps import ALL_ROLES, RuntimeDep, require
from service.api.schemas import DecisionOut, HealthOut, PolicyEvaluateIn
from service.db.registry_models import Actor
from service.flows.authorisation import evaluate
from service.policy.model import HolderState, PolicyRequest

router = APIRouter()
Anyone = Annotated[Actor, Depends(require(ALL_ROLES))]


@router.get(
    "/healthz",
    response_model=HealthOut,
    tags=["system"],
    responses={503: {"model": HealthOut, "description": "the token or the database is unavailable"}},
)
def healthz(rt: RuntimeDep) -> JSONResponse:
    """Token and database reachability; 503 when either fails."""
    hsm_state = database = "ok"
    try:
        rt.session.ping()
    except Exception as exc:
        hsm_state = f"unavailable: {type(exc).__name__}"
    try:
        rt.repo.ping()
    except Exception as exc:
        database = f"unavailable: {type(exc).__name__}"
    ok = hsm_state == database == "ok"
    body = HealthOut(status="ok" if ok else "unavailable", token=hsm_state, database=database)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/v1/policy", tags=["policy"])
def policy_table(rt: RuntimeDep, actor: Anyone) -> dict[str, Any]:
    """The active regime's rule table, in evaluation order."""
    regime = rt.regime
    return {
        "regime": regime.name,
        "description": regime.description,
        "base": regime.base,
        "rules": [rule.model_dump(mode="json") for rule in regime.rules],
    }


@router.post("/v1/policy/evaluate", response_model=DecisionOut, tags=["policy"])
def policy_evaluate(body: PolicyEvaluateIn, rt: RuntimeDep, actor: Anyone) -> DecisionOut:
    """Dry run: what the active regime decides for this request. Changes nothing."""
    request = PolicyRequest(
        operation=body.operation,
        channel=body.channel,
        role=body.role,
        actor_municipality=body.actor_municipality,
        holder_municipality=body.holder_municipality,
        evidence=frozenset(body.evidence),
        holder=HolderState(
            age=body.age,
            adult_ward=body.adult_ward,
            evacuee=body.evacuee,
            card_valid=body.card_valid,
            sign_cert_valid=body.sign_cert_valid,
        ),
        post_office_delegated=body.post_office_delegated,
        venue=body.venue,
        revocation_reason=body.revocation_reason,
        infrastructure=body.infrastructure,
        holder_bound=body.holder_bound,
    )
    return decision_out(evaluate(rt, request, dry_run=True))
