import { test } from "node:test";
import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { mintConnectToken } from "../tokens.js";

const SECRET = "0123456789abcdef0123456789abcdef-token-test";

test("connect tokens carry the claims the gateway requires", async () => {
  const token = await mintConnectToken({ user: "alice", secret: SECRET, ttlSeconds: 120, session: "s1" });
  const { payload, protectedHeader } = await jwtVerify(token, Buffer.from(SECRET), { audience: "livegate", algorithms: ["HS256"] });
  assert.equal(protectedHeader.alg, "HS256");
  assert.equal(payload.sub, "alice");
  assert.equal(payload.kind, "connect");
  assert.equal(payload.sid, "s1");
  assert.match(payload.jti, /^[0-9a-f-]{36}$/);
  assert.ok(payload.exp - payload.iat <= 120 && payload.exp > payload.iat);
});

test("every token has its own jti", async () => {
  const a = await mintConnectToken({ user: "alice", secret: SECRET });
  const b = await mintConnectToken({ user: "alice", secret: SECRET });
  const ja = (await jwtVerify(a, Buffer.from(SECRET))).payload.jti;
  const jb = (await jwtVerify(b, Buffer.from(SECRET))).payload.jti;
  assert.notEqual(ja, jb);
});

test("a short secret or missing user is refused", async () => {
  await assert.rejects(mintConnectToken({ user: "alice", secret: "short" }), TypeError);
  await assert.rejects(mintConnectToken({ user: "", secret: SECRET }), TypeError);
});
