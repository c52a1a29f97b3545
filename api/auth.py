"""Who may call what: a bearer token's role against the roles a route admits.

401 when there is no token, or it is malformed, unknown or revoked (with `WWW-Authenticate: Bearer`); 403 when
the token is good but its role may not use the route. Neither response repeats the token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.services import services
from api.tokens import Principal, Role

READERS = (Role.AUDITOR, Role.RISK_OFFICER, Role.OPERATOR)
RULE_EDITORS = (Role.RISK_OFFICER,)
KILL_SWITCH_HOLDERS = (Role.OPERATOR, Role.RISK_OFFICER)

_bearer = HTTPBearer(auto_error=False, description="An API token from `cryptoscalp tokens create --role ROLE`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the request and admits only `roles`."""
    allowed = ", ".join(role.value for role in roles)

    def authenticated(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        principal = services(request).tokens.authenticate(credentials.credentials)
        if principal is None:
            raise _unauthorized("the bearer token is not valid (unknown, malformed or revoked)")
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"role {principal.role.value} may not do this; it needs: {allowed}"
            )
        return principal

    return authenticated
