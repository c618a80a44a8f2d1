// A minimal backend for a livegate gateway in proxy mode:
//   GET  /                  the chat page (../chat-page/)
//   POST /token             a connect token for the name in {"user": ...} (demo sign-in)
//   POST /announce          publishes a message through the gateway's HTTP API
//   POST /livegate/connect, /livegate/subscribe, /livegate/event,
//        /livegate/disconnect  the proxy routes, every request verified
//
// Environment (no LIVEGATE_ prefix: `livegate serve` reads those as its own
// settings):
//   PORT               default 3000
//   PROXY_SECRET_FILE  file holding the gateway's proxy secret (proxy.secret_file),
//                      or PROXY_SECRET with the secret itself
//   TOKEN_SECRET_FILE  file holding the gateway's HS256 token key
//                      (tokens.hmac_secret_file), or TOKEN_SECRET
//   GATEWAY_URL        the gateway's HTTP base URL, default http://127.0.0.1:8080
//   GATEWAY_WS_URL     what the page connects to, default GATEWAY_URL's /ws
//   GATEWAY_API_KEY    an "lg_…" key allowed to publish to room:lobby
// A secret file's trailing newline is dropped, as the gateway does.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { verifyLivegateRequest, LivegateVerifyError } from "./livegate-verify.js";
import { mintConnectToken } from "./tokens.js";

/** The secret in the environment variable name, or in the file name_FILE names. */
function secretFromEnv(name) {
  const file = process.env[`${name}_FILE`];
  if (file) return readFileSync(file, "utf8").replace(/[\r\n]+$/, "");
  return process.env[name] ?? "";
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
const PORT = Number(process.env.PORT ?? 3000);
const PROXY_SECRET = isMain ? secretFromEnv("PROXY_SECRET") : "";
const TOKEN_SECRET = isMain ? secretFromEnv("TOKEN_SECRET") : "";
const API_URL = (process.env.GATEWAY_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const API_KEY = process.env.GATEWAY_API_KEY ?? "";
const WS_URL = process.env.GATEWAY_WS_URL || `${API_URL.replace(/^http/, "ws")}/ws`;
const MAX_BODY = 64 * 1024;

if (isMain && (Buffer.byteLength(PROXY_SECRET) < 32 || Buffer.byteLength(TOKEN_SECRET) < 32)) {
  console.error("PROXY_SECRET(_FILE) and TOKEN_SECRET(_FILE) must each give at least 32 bytes");
  process.exit(1);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJSON(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** Publishes through the gateway's HTTP API with the API key. */
export async function publish(channel, data) {
  const res = await fetch(`${API_URL}/api/publish`, {
    method: "POST",
    headers: { "Authorization": `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ channel, data }),
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`publish: HTTP ${res.status}`);
  return res.json();
}

const validName = (s) => typeof s === "string" && /^[A-Za-z0-9_-]{1,32}$/.test(s);

// The proxy routes. Each gets the verified request body.
const routes = {
  // Who is this connection? The token's claims (verified by the gateway)
  // name the user; a real application could look at the forwarded Cookie.
  "/livegate/connect": (body) => {
    if (!body.identity) return { deny: true };
    return { user: body.identity.sub, channels: ["room:lobby"] };
  },
  // Anyone signed in may read any room except room:staff.
  "/livegate/subscribe": (body) => ({ allow: body.channel !== "room:staff" }),
  // "send" {"text": "..."}: validated, then published to the lobby.
  "/livegate/event": (body) => {
    if (body.event !== "send") return { error: "bad_request" };
    const text = body.payload?.text;
    if (typeof text !== "string" || text.length === 0 || text.length > 500) return { error: "bad_request" };
    return {
      reply: { ok: true },
      publish: [{ channel: "room:lobby", data: { user: body.identity.sub, text } }],
    };
  },
  "/livegate/disconnect": () => ({}),
};

async function handle(req, res) {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && (url.pathname === "/" || url.pathname === "/app.js")) {
    const file = url.pathname === "/" ? "index.html" : "app.js";
    const type = file.endsWith(".html") ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8";
    const content = await readFile(fileURLToPath(new URL(`../chat-page/${file}`, import.meta.url)));
    res.writeHead(200, {
      "Content-Type": type,
      "Content-Security-Policy": `default-src 'self'; connect-src 'self' ${new URL(WS_URL).origin.replace(/^http/, "ws")}`,
      "X-Content-Type-Options": "nosniff",
    });
    res.end(content);
    return;
  }
  if (req.method === "GET" && url.pathname === "/config.json") {
    sendJSON(res, 200, { wsURL: WS_URL });
    return;
  }
  if (req.method !== "POST") {
    const known = url.pathname === "/token" || url.pathname === "/announce" || url.pathname in routes;
    if (known) res.setHeader("Allow", "POST");
    sendJSON(res, known ? 405 : 404, known ? { error: "method not allowed" } : { error: "not found" });
    return;
  }
  let raw;
  try {
    raw = await readBody(req);
  } catch {
    sendJSON(res, 413, { error: "too large" });
    return;
  }
  // The page's own calls are JSON: another site's page cannot send that
  // content type cross-origin without a CORS preflight, which this server
  // never grants, so a form on another site cannot sign in or announce.
  const isJSON = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase() === "application/json";
  if ((url.pathname === "/token" || url.pathname === "/announce") && !isJSON) {
    sendJSON(res, 415, { error: "application/json expected" });
    return;
  }
  if (url.pathname === "/token") {
    // Demo sign-in: anyone may pick a name. A real application mints the
    // token for the user its own session says is signed in.
    let user;
    try { user = JSON.parse(raw.toString("utf8")).user; } catch { /* refused below */ }
    if (!validName(user)) {
      sendJSON(res, 400, { error: "bad user name" });
      return;
    }
    sendJSON(res, 200, { token: await mintConnectToken({ user, secret: TOKEN_SECRET }) });
    return;
  }
  if (url.pathname === "/announce") {
    try {
      const text = String(JSON.parse(raw.toString("utf8")).text ?? "").slice(0, 500);
      sendJSON(res, 200, await publish("room:lobby", { user: "system", text }));
    } catch (err) {
      console.error("announce failed:", err.message);
      sendJSON(res, 502, { error: "publish failed" });
    }
    return;
  }
  const route = routes[url.pathname];
  if (!route) {
    sendJSON(res, 404, { error: "not found" });
    return;
  }
  try {
    verifyLivegateRequest(req, raw, PROXY_SECRET);
  } catch (err) {
    if (err instanceof LivegateVerifyError) {
      console.warn("refused proxy request:", err.code);
      sendJSON(res, 401, { error: "unauthorized" });
      return;
    }
    throw err;
  }
  let body;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    sendJSON(res, 400, { error: "bad json" });
    return;
  }
  sendJSON(res, 200, route(body));
}

if (isMain) {
  createServer((req, res) => {
    handle(req, res).catch((err) => {
      console.error("request failed:", err);
      if (!res.headersSent) sendJSON(res, 500, { error: "internal" });
      else res.destroy();
    });
  }).listen(PORT, "127.0.0.1", () => console.log(`backend on http://127.0.0.1:${PORT}`));
}
