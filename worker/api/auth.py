"""Bearer-token authentication. Tokens are configured as SHA-256 hashes (``api.token_hashes``), so the
settings never hold a usable token; a presented token is hashed and compared in constant time with every
configured hash. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.api.errors import ApiError

PREFIX = "sha256:"
REALM = 'Bearer realm="mediapurge"'

bearer = HTTPBearer(auto_error=False, description="A token whose hash is in api.token_hashes.")


def hash_token(token: str) -> str:
    """The settings entry for ``token``: ``sha256:<hex>``."""
    return PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_accepted(token: str, hashes: list[str]) -> bool:
    presented = hash_token(token)
    accepted = False
    for configured in hashes:  # no early exit: the time taken does not say which entry matched
        accepted |= hmac.compare_digest(presented, configured)
    return accepted


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    if credentials is None:
        raise ApiError(401, "unauthorized", "this endpoint needs an 'Authorization: Bearer <token>' header", headers={"WWW-Authenticate": REALM})
    if not token_accepted(credentials.credentials, request.app.state.token_hashes):
        raise ApiError(
            401, "invalid_token", "the bearer token is not accepted",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
