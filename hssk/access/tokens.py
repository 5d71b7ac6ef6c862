"""Access tokens: short-lived JWTs signed with the installation secret."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import jwt

from hssk.access.actor import Actor
from hssk.kernel.config import Settings, secret_id

ISSUER = "hssk"
AUDIENCE = "hssk-api"
ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, malformed, expired, forged or for another audience."""


def issue(
    settings: Settings, actor: Actor, *, ttl: int = 900, session_start: int | None = None
) -> str:
    """A signed access token for ``actor``, valid ``ttl`` seconds; ``session_start`` (epoch
    seconds, default now) is when its holder logged in, kept across renewals."""
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
        "sst": now if session_start is None else session_start,
    }
    key = settings.secret_key()
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": secret_id(key)})


# Verified tokens (signature and claims checked once) → their actor, per process: a partner
# sends the same token on every request and checking the HMAC, reading the secret and
# decoding cost more than the rest of a small read. An entry lives at most VERIFIED_TTL s
# (a secret retired without overlap is refused that soon) and never past the token's own
# expiry; whether the account was disabled is still asked on every request
# (accounts.account_disabled).
VERIFIED_TTL = 30.0
_VERIFIED_MAX = 50_000
_verified: dict[tuple[str, str, str], tuple[float, float, Actor]] = {}


def verify(settings: Settings, token: str) -> Actor:
    """The actor a valid token speaks for; raises TokenError otherwise."""
    return verify_until(settings, token)[0]


def verify_until(settings: Settings, token: str) -> tuple[Actor, float]:
    """The actor a valid token speaks for and its expiry (epoch seconds); TokenError
    otherwise."""
    key = (str(settings.data_dir), os.environ.get("HSSK_SECRET_KEY", ""), token)
    hit = _verified.get(key)
    if hit is not None:
        cached_at, exp, actor = hit
        if time.monotonic() - cached_at < VERIFIED_TTL and time.time() < exp:
            return actor, exp
        del _verified[key]
    actor, exp = _decode(settings, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[key] = (time.monotonic(), exp, actor)
    return actor, exp


def renewal(
    settings: Settings, token: str, *, ttl: int, renew_below: float, max_session: float
) -> str | None:
    """A fresh token for the holder of valid ``token`` when it has less than ``renew_below``
    seconds left and its session began less than ``max_session`` seconds ago (None: keep
    it). Raises TokenError for an invalid token."""
    actor, exp = verify_until(settings, token)
    now = time.time()
    if exp - now >= renew_below:
        return None
    claims = jwt.decode(token, options={"verify_signature": False})  # verified just above
    start = int(claims.get("sst") or claims.get("iat") or now)
    if now - start >= max_session:
        return None
    return issue(settings, actor, ttl=ttl, session_start=start)


def _decode(settings: Settings, token: str) -> tuple[Actor, float]:
    """Checked with the secret its ``kid`` names: the current one, or a retired one still
    within its overlap (``hssk keys rotate token``); tokens without a kid try each."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    keys = [k for k in settings.secret_keys() if kid is None or secret_id(k) == kid]
    if not keys:
        raise TokenError("signed with a key that is no longer valid (rotated)")
    for i, key in enumerate(keys):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            break
        except jwt.InvalidSignatureError as exc:
            if i == len(keys) - 1:
                raise TokenError(str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
    actor = Actor(
        account_id=str(claims["sub"]),
        kind=str(claims.get("kind") or "anonymous"),
        unit_id=claims.get("unit"),
        roles=frozenset(claims.get("roles") or ()),
        scopes=frozenset(str(claims.get("scope") or "").split()),
        person_id=claims.get("person"),
        client=claims.get("client"),
    )
    return actor, float(claims["exp"])
