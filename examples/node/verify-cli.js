// Reads a JSON array of signed requests on stdin, verifies them in order
// with one nonce cache and a fixed clock, and prints a JSON array of
// results: "ok", "bad_signature", "stale" or "replayed". Used by the Go
// test that checks the Go, Node and Python implementations agree.
//
// Each case: {"method", "url", "headers": {name: value}, "body_b64",
// "secrets": [..], "now": unix seconds}.
import { verifyLivegateRequest, NonceCache, LivegateVerifyError } from "./livegate-verify.js";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const cases = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const cache = new NonceCache();
const results = cases.map((c) => {
  const headers = {};
  for (const [k, v] of Object.entries(c.headers)) headers[k.toLowerCase()] = v;
  try {
    verifyLivegateRequest({ method: c.method, url: c.url, headers }, Buffer.from(c.body_b64, "base64"),
      c.secrets, { cache, now: () => c.now * 1000 });
    return "ok";
  } catch (err) {
    if (err instanceof LivegateVerifyError) return err.code;
    throw err;
  }
});
process.stdout.write(JSON.stringify(results));
