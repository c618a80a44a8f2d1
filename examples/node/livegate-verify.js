// Verification of the signed requests a livegate gateway in proxy mode
// sends to its backend. The algorithm is the one of docs/proxy.md:
//
//   canonical = METHOD "\n" REQUEST-URI "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
//   Livegate-Signature = "v1=" + hex(HMAC-SHA256(secret, canonical))
//
// Uses only node:crypto.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const DEFAULT_MAX_SKEW_SECONDS = 300;
export const DEFAULT_MAX_NONCES = 100000;
export const MIN_SECRET_BYTES = 32;

/** The error thrown for a refused request; code is "bad_signature", "stale" or "replayed". */
export class LivegateVerifyError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "LivegateVerifyError";
    this.code = code;
  }
}

/**
 * Remembers the nonces of accepted requests until their timestamps leave
 * the skew window, holding at most maxNonces. When an unexpired nonce must
 * make room, every later request no newer than it is refused as replayed,
 * so the bound never lets a replay through.
 */
export class NonceCache {
  constructor(maxNonces = DEFAULT_MAX_NONCES) {
    this.max = maxNonces;
    this.seen = new Map(); // nonce -> timestamp, roughly oldest first
    this.floor = -Infinity;
  }

  /** Records nonce; throws LivegateVerifyError("replayed") if it is not new. */
  add(nonce, ts, oldest) {
    for (const [n, t] of this.seen) {
      if (t >= oldest) break;
      this.seen.delete(n);
    }
    if (this.seen.has(nonce)) throw new LivegateVerifyError("replayed", "nonce already used");
    if (ts <= this.floor) throw new LivegateVerifyError("replayed", "nonce cache full for this time");
    while (this.seen.size >= this.max) {
      // Evict the oldest timestamp (Map order is insertion order, which is
      // close to but not exactly timestamp order).
      let oldestNonce, oldestTs = Infinity;
      for (const [n, t] of this.seen) {
        if (t < oldestTs) { oldestTs = t; oldestNonce = n; }
      }
      this.seen.delete(oldestNonce);
      this.floor = Math.max(this.floor, oldestTs);
    }
    if (ts <= this.floor) throw new LivegateVerifyError("replayed", "nonce cache full for this time");
    this.seen.set(nonce, ts);
  }
}

const defaultCache = new NonceCache();

/** The string the gateway signs. body is a Buffer or string. */
export function canonicalString(method, requestURI, timestamp, nonce, body) {
  const bodyHash = createHash("sha256").update(body ?? "").digest("hex");
  return `${method}\n${requestURI}\n${timestamp}\n${nonce}\n${bodyHash}`;
}

function header(headers, name) {
  const v = headers[name] ?? headers[name.toLowerCase()];
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return typeof v === "string" ? v : undefined;
}

/**
 * Verifies a request from the gateway. req is a node http.IncomingMessage
 * (or any {method, url, headers} with lower-case header names); body is the
 * exact raw body (Buffer), read with a size limit; secret is the shared
 * secret (string or Buffer of at least 32 bytes) or an array of two during
 * rotation. Throws LivegateVerifyError with code "bad_signature" (checked
 * first, so a tampered timestamp is a bad signature), "stale" (timestamp
 * more than maxSkewSeconds away) or "replayed" (nonce seen before).
 * options: {maxSkewSeconds, cache (a NonceCache), now (ms clock)}.
 */
export function verifyLivegateRequest(req, body, secret, options = {}) {
  const secrets = (Array.isArray(secret) ? secret : [secret]).map((s) => Buffer.from(s));
  if (secrets.length < 1 || secrets.length > 2 || secrets.some((s) => s.length < MIN_SECRET_BYTES)) {
    throw new TypeError(`livegate: need one or two secrets of at least ${MIN_SECRET_BYTES} bytes`);
  }
  const maxSkew = options.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  const cache = options.cache ?? defaultCache;
  const nowSeconds = Math.floor((options.now ? options.now() : Date.now()) / 1000);

  const ts = header(req.headers, "livegate-timestamp");
  const nonce = header(req.headers, "livegate-nonce");
  const sig = header(req.headers, "livegate-signature");
  if (ts === undefined || nonce === undefined || sig === undefined) {
    throw new LivegateVerifyError("bad_signature", "missing or repeated signature header");
  }
  if (!/^[0-9]{1,12}$/.test(ts)) throw new LivegateVerifyError("bad_signature", "malformed timestamp");
  if (!/^[A-Za-z0-9_-]{21}[AQgw]$/.test(nonce)) throw new LivegateVerifyError("bad_signature", "malformed nonce");
  const m = /^v1=([0-9a-f]{64})$/.exec(sig);
  if (!m) throw new LivegateVerifyError("bad_signature", "malformed signature");
  const got = Buffer.from(m[1], "hex");

  const canonical = canonicalString(req.method, req.url, ts, nonce, body);
  let ok = false;
  for (const s of secrets) {
    const want = createHmac("sha256", s).update(canonical).digest();
    if (timingSafeEqual(want, got)) ok = true;
  }
  if (!ok) throw new LivegateVerifyError("bad_signature", "signature mismatch");

  const t = Number(ts);
  if (t < nowSeconds - maxSkew || t > nowSeconds + maxSkew) {
    throw new LivegateVerifyError("stale", "timestamp outside the allowed skew");
  }
  cache.add(nonce, t, nowSeconds - maxSkew);
}
