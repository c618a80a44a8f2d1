// Connect tokens for the gateway, minted with jose (HS256).
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";

/**
 * Returns a connect token for user: HS256 with the gateway's token secret,
 * claims sub, aud, kind "connect", iat, exp (ttlSeconds ahead, at most an
 * hour by the gateway's default) and a random jti (tokens are single-use
 * when the gateway requires it).
 */
export async function mintConnectToken({ user, secret, ttlSeconds = 300, audience = "livegate", session, tenant, groups }) {
  if (typeof user !== "string" || user === "") throw new TypeError("user is required");
  const key = Buffer.from(secret);
  if (key.length < 32) throw new TypeError("the token secret must be at least 32 bytes");
  const claims = { kind: "connect" };
  if (session) claims.sid = session;
  if (tenant) claims.tenant = tenant;
  if (groups) claims.groups = groups;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key);
}
