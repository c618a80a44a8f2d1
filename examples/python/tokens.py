"""Connect tokens for the gateway, minted with PyJWT (HS256)."""

import time
import uuid

import jwt  # PyJWT


def mint_connect_token(user: str, secret: str, ttl_seconds: int = 300, audience: str = "livegate", **extra) -> str:
    """A connect token for user: claims sub, aud, kind "connect", iat, exp
    and a random jti; extra may add sid, tenant, groups."""
    if not user:
        raise ValueError("user is required")
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < 32:
        raise ValueError("the token secret must be at least 32 bytes")
    now = int(time.time())
    claims = {"sub": user, "aud": audience, "kind": "connect", "iat": now, "exp": now + ttl_seconds, "jti": str(uuid.uuid4())}
    claims.update({k: v for k, v in extra.items() if k in ("sid", "tenant", "groups")})
    return jwt.encode(claims, key, algorithm="HS256")
