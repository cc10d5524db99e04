"""Bearer-token authentication, tokens compared in constant time."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..credentials import token_matches  # one constant-time compare, shared with the dashboard

_bearer = HTTPBearer(auto_error=False, description="a token from the api_tokens setting")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def bearer_auth(tokens: list[str]):
    """A FastAPI dependency accepting only ``Authorization: Bearer <one of tokens>``.

    Returns a short fingerprint of the token (who acknowledged an event), never the token.
    """
    tokens = [t for t in tokens if t]

    def check(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        if creds is None or not creds.credentials:
            raise _unauthorized("missing bearer token")
        if not token_matches(creds.credentials, tokens):
            raise _unauthorized("invalid token")
        return "token-" + hashlib.sha256(creds.credentials.encode()).hexdigest()[:8]

    return check
