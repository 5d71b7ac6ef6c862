"""Access tokens: short-lived JWTs signed with the installation secret."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from hssk.access.actor import Actor
from hssk.config import Settings

ISSUER = "hssk"
AUDIENCE = "hssk-api"
ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, malformed, expired, forged or for another audience."""


def issue(settings: Settings, actor: Actor, *, ttl: int = 900) -> str:
    """A signed access token for ``actor``, valid ``ttl`` seconds."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": actor.account_id,
        "kind": actor.kind,
        "unit": actor.unit_id,
        "roles": sorted(actor.roles),
        "scope": " ".join(sorted(actor.scopes)),
        "person": actor.person_id,
        "client": actor.client,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key(), algorithm=ALGORITHM)


def verify(settings: Settings, token: str) -> Actor:
    """The actor a valid token speaks for; raises TokenError otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    return Actor(
        account_id=str(claims["sub"]),
        kind=str(claims.get("kind") or "anonymous"),
        unit_id=claims.get("unit"),
        roles=frozenset(claims.get("roles") or ()),
        scopes=frozenset(str(claims.get("scope") or "").split()),
        person_id=claims.get("person"),
        client=claims.get("client"),
    )
