import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { verifyLivegateRequest, canonicalString, NonceCache, LivegateVerifyError } from "../livegate-verify.js";

const SECRET = "0123456789abcdef0123456789abcdef-node-test";
const NOW = 1767225600;

function sign({ method = "POST", url = "/livegate/event", body = '{"a":1}', ts = NOW, nonce, secret = SECRET } = {}) {
  nonce ??= randomBytes(16).toString("base64url");
  const sig = "v1=" + createHmac("sha256", secret).update(canonicalString(method, url, String(ts), nonce, Buffer.from(body))).digest("hex");
  return {
    req: { method, url, headers: { "livegate-timestamp": String(ts), "livegate-nonce": nonce, "livegate-signature": sig } },
    body: Buffer.from(body),
  };
}

const opts = () => ({ cache: new NonceCache(), now: () => NOW * 1000 });

function code(fn) {
  try {
    fn();
    return "ok";
  } catch (err) {
    if (err instanceof LivegateVerifyError) return err.code;
    throw err;
  }
}

test("the documented worked example verifies", () => {
  const body = Buffer.from('{"conn_id":"9f4e2a71d03b-1","identity":{"sub":"alice"},"event":"send","payload":{"text":"hi"}}');
  const req = {
    method: "POST",
    url: "/livegate/event",
    headers: {
      "livegate-timestamp": "1767225600",
      "livegate-nonce": "AAECAwQFBgcICQoLDA0ODw",
      "livegate-signature": "v1=aa0a47a90033eea22cc8fde95ae5df6be7d96c71b07ae5757ed66edaf07609f7",
    },
  };
  assert.equal(code(() => verifyLivegateRequest(req, body, "livegate-example-secret-32-bytes-min!", opts())), "ok");
});

test("valid request", () => {
  const { req, body } = sign();
  assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, opts())), "ok");
});

test("either of two secrets during rotation", () => {
  const other = "fedcba9876543210fedcba9876543210-node-other";
  const o = opts();
  assert.equal(code(() => verifyLivegateRequest(sign().req, sign().body, [other, SECRET], o)), "ok");
  const s = sign({ secret: other });
  assert.equal(code(() => verifyLivegateRequest(s.req, s.body, [other, SECRET], o)), "ok");
  const w = sign({ secret: "z".repeat(32) });
  assert.equal(code(() => verifyLivegateRequest(w.req, w.body, [other, SECRET], o)), "bad_signature");
});

test("tampered body, path, method, timestamp, nonce, signature", () => {
  const cases = {
    body: (r) => { r.body = Buffer.from('{"a":2}'); },
    path: (r) => { r.req.url = "/livegate/connect"; },
    query: (r) => { r.req.url += "?admin=1"; },
    method: (r) => { r.req.method = "PUT"; },
    timestamp: (r) => { r.req.headers["livegate-timestamp"] = String(NOW + 1); },
    nonce: (r) => { r.req.headers["livegate-nonce"] = "AAAAAAAAAAAAAAAAAAAAAA"; },
    signature: (r) => { r.req.headers["livegate-signature"] = "v1=" + "0".repeat(64); },
    "uppercase hex": (r) => { r.req.headers["livegate-signature"] = r.req.headers["livegate-signature"].toUpperCase().replace("V1=", "v1="); },
    "missing header": (r) => { delete r.req.headers["livegate-nonce"]; },
    "repeated header": (r) => { r.req.headers["livegate-signature"] = [r.req.headers["livegate-signature"], r.req.headers["livegate-signature"]]; },
  };
  for (const [name, mutate] of Object.entries(cases)) {
    const r = sign();
    mutate(r);
    assert.equal(code(() => verifyLivegateRequest(r.req, r.body, SECRET, opts())), "bad_signature", name);
  }
});

test("wrong secret", () => {
  const { req, body } = sign({ secret: "x".repeat(40) });
  assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, opts())), "bad_signature");
});

test("stale and future timestamps", () => {
  for (const [skew, want] of [[-300, "ok"], [-301, "stale"], [300, "ok"], [301, "stale"], [-3600, "stale"]]) {
    const { req, body } = sign({ ts: NOW + skew });
    assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, opts())), want, `skew ${skew}`);
  }
});

test("replayed nonce", () => {
  const o = opts();
  const { req, body } = sign();
  assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, o)), "ok");
  assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, o)), "replayed");
});

test("a forged request does not burn the nonce", () => {
  const o = opts();
  const { req, body } = sign();
  assert.equal(code(() => verifyLivegateRequest(req, Buffer.from("{}"), SECRET, o)), "bad_signature");
  assert.equal(code(() => verifyLivegateRequest(req, body, SECRET, o)), "ok");
});

test("the nonce cache is bounded and never lets an evicted nonce through", () => {
  const cache = new NonceCache(3);
  const o = { cache, now: () => NOW * 1000 };
  const reqs = [0, 1, 2].map((i) => sign({ ts: NOW - 10 + i }));
  for (const r of reqs) assert.equal(code(() => verifyLivegateRequest(r.req, r.body, SECRET, o)), "ok");
  const fourth = sign();
  assert.equal(code(() => verifyLivegateRequest(fourth.req, fourth.body, SECRET, o)), "ok");
  assert.equal(cache.seen.size, 3);
  assert.equal(code(() => verifyLivegateRequest(reqs[0].req, reqs[0].body, SECRET, o)), "replayed");
});

test("short secrets are refused", () => {
  const { req, body } = sign();
  assert.throws(() => verifyLivegateRequest(req, body, "short", opts()), TypeError);
});
