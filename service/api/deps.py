"""Dependencies: the runtime, the authenticated actor, and the role each endpoint declares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from service.db.registry_models import Actor
from service.errors import AuthenticationRequired, RoleForbidden
from service.flows.lockout import failed, refuse_if_known_locked
from service.policy.model import Role
from service.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def authenticated(request: Request, rt: RuntimeDep) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired("send Authorization: Bearer <actor token>")
    refuse_if_known_locked(rt)
    actor = rt.repo.actor_by_token(token.strip())
    if actor is None:
        failed(rt, "bearer")  # counted and audited; raises AuthenticationLocked at the source's limit
        raise AuthenticationRequired("unknown or deactivated actor token")
    return actor


ALL_ROLES: frozenset[Role] = frozenset(Role)
STAFF: frozenset[Role] = frozenset({Role.MUNICIPAL_STAFF, Role.FISCAL_YEAR_STAFF})


class RoleGate:
    """A dependency that admits the listed roles; ``allowed`` is read by the role-matrix tests and docs."""

    def __init__(self, allowed: frozenset[Role]) -> None:
        self.allowed = allowed

    def __call__(self, actor: Annotated[Actor, Depends(authenticated)]) -> Actor:
        if actor.role not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            raise RoleForbidden(f"role {actor.role} may not call this endpoint (allowed: {allowed})")
        return actor


def require(*roles: Role | frozenset[Role]) -> Callable[..., Actor]:
    allowed: set[Role] = set()
    for item in roles:
        allowed |= item if isinstance(item, frozenset) else {item}
    return RoleGate(frozenset(allowed))
