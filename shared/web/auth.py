"""Who is asking: the bearer token every route but the public ones depends on (verified by shared.auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import Principal, TokenVerifier, UnauthenticatedError

_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="a token from the platform's issuer")


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise UnauthenticatedError("unauthenticated", "this needs a bearer token (Authorization: Bearer <token>)")
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
