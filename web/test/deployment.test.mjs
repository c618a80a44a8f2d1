// The quick start of docs/deployment.md as a test: `livegate serve` in
// proxy mode in front of the Node example backend (examples/node), with its
// chat page in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; no browser is ever downloaded), run by node's test
// runner through scripts/browser-test (which also runs npm ci in
// examples/node when needed).
//
// The gateway's configuration is the YAML block of the quick start, taken
// from docs/deployment.md itself, so the page and the test cannot drift
// apart. Only the ports change, through LIVEGATE_* variables (the
// environment wins over the file), so the suite runs next to others.
//
// Steps as in the document: build livegate, write the keys and the
// configuration, `config check`, `apikey create`, start the backend, start
// `livegate serve`, open the page as two users.

import {after, before, test} from "node:test";
import assert from "node:assert/strict";
import {execFile, spawn} from "node:child_process";
import {createHmac, createHash, randomBytes} from "node:crypto";
import {existsSync, rmSync} from "node:fs";
import {mkdtemp, readFile, rm, writeFile} from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {promisify} from "node:util";

import {chromium} from "playwright-core";

const execFileP = promisify(execFile);

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const NODE_EXAMPLE = path.join(REPO, "examples", "node");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

const BUILD_TIMEOUT = 180_000;
const START_TIMEOUT = 10_000;
const UI_TIMEOUT = 5_000;
const TEST_TIMEOUT = 20_000;

// ---------------------------------------------------------------- processes

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The environment without LIVEGATE_* variables: `livegate serve` reads
// them as settings, and the caller's must not leak into the test.
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("LIVEGATE_")) env[k] = v;
  }
  return {...env, ...extra};
}

// A child process whose output is kept for failure messages.
class Child {
  constructor(name, cmd, args, opts) {
    this.name = name;
    this.output = "";
    this.exited = null;
    this.child = spawn(cmd, args, {...opts, stdio: ["ignore", "pipe", "pipe"]});
    const keep = (chunk) => { this.output = (this.output + chunk).slice(-50_000); };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => { this.exited = {code, signal}; resolve(); });
    });
  }

  // Waits until the output matches re; returns the match.
  async waitFor(re) {
    const deadline = Date.now() + START_TIMEOUT;
    while (Date.now() < deadline) {
      const m = re.exec(this.output);
      if (m) return m;
      if (this.exited) break;
      await sleep(25);
    }
    throw new Error(`${this.name} ${this.exited ? `exited (${JSON.stringify(this.exited)})` : `did not print ${re}`}:\n${this.output}`);
  }

  async stop() {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => { if (!this.exited) this.child.kill("SIGKILL"); }, 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  killNow() {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

// The YAML block of the quick start in docs/deployment.md (the one whose
// first line is "# livegate.yaml…"), without the list indentation.
async function quickStartConfig() {
  const doc = await readFile(path.join(REPO, "docs", "deployment.md"), "utf8");
  const m = /^( *)```yaml\n((?:\1.*\n|\n)*?)\1```/m.exec(doc.slice(doc.indexOf("# livegate.yaml") - 200));
  assert.ok(m && m[2].trimStart().startsWith("# livegate.yaml"), "docs/deployment.md has no quick-start livegate.yaml block");
  const indent = m[1].length;
  return m[2].split("\n").map((l) => l.slice(indent)).join("\n");
}

let tmp;
let gateway;
let backend;
let browser;
let apiKey;
let proxySecret;
const urls = {};

process.on("exit", () => {
  for (const c of [gateway, backend]) if (c) c.killNow();
  if (tmp) rmSync(tmp, {recursive: true, force: true});
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
}

before(async () => {
  assert.ok(existsSync(path.join(NODE_EXAMPLE, "node_modules", "jose")),
    "examples/node/node_modules is missing: run npm ci there (scripts/browser-test does)");
  tmp = await mkdtemp(path.join(os.tmpdir(), "livegate-deploy-"));
  // 1. Build livegate; the keys, mode 0600.
  const bin = path.join(tmp, "livegate");
  await execFileP("go", ["build", "-o", bin, "./cmd/livegate"], {cwd: REPO, timeout: BUILD_TIMEOUT, maxBuffer: 16 << 20});
  proxySecret = randomBytes(48).toString("base64");
  await writeFile(path.join(tmp, "token.key"), randomBytes(48).toString("base64") + "\n", {mode: 0o600});
  await writeFile(path.join(tmp, "proxy.key"), proxySecret + "\n", {mode: 0o600});
  // 2. The configuration of the document, checked; the backend's API key.
  await writeFile(path.join(tmp, "livegate.yaml"), await quickStartConfig(), {mode: 0o600});
  const [gwPort, adminPort, backendPort] = [await freePort(), await freePort(), await freePort()];
  urls.gateway = `http://127.0.0.1:${gwPort}`;
  urls.backend = `http://127.0.0.1:${backendPort}`;
  const gwEnv = cleanEnv({
    LIVEGATE_LISTEN: `127.0.0.1:${gwPort}`,
    LIVEGATE_PUBLIC_URL: urls.gateway,
    LIVEGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    LIVEGATE_ALLOWED_ORIGINS: urls.backend,
    LIVEGATE_PROXY_URL: `${urls.backend}/livegate`,
  });
  const run = (args) => execFileP(bin, args, {cwd: tmp, env: gwEnv, timeout: 20_000});
  const check = await run(["config", "check", "--config", "livegate.yaml"]);
  assert.match(check.stdout, /livegate\.yaml: ok/);
  const created = await run(["apikey", "create", "--db", "livegate.db", "--name", "chat-backend", "--scopes", "publish:room:*"]);
  apiKey = created.stdout.split("\n")[0];
  assert.match(apiKey, /^lg_[a-z0-9]{8}_\S+$/);
  // 3. The Node backend, reading the same secret files.
  backend = new Child("the Node backend", process.execPath, ["server.js"], {
    cwd: NODE_EXAMPLE,
    env: cleanEnv({
      PORT: String(backendPort),
      PROXY_SECRET_FILE: path.join(tmp, "proxy.key"),
      TOKEN_SECRET_FILE: path.join(tmp, "token.key"),
      GATEWAY_URL: urls.gateway,
      GATEWAY_API_KEY: apiKey,
    }),
  });
  await backend.waitFor(/backend on http/);
  // 4. livegate serve.
  gateway = new Child("livegate serve", bin, ["serve", "--config", "livegate.yaml"], {cwd: tmp, env: gwEnv});
  await gateway.waitFor(/livegate started/);
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000});
}, {timeout: BUILD_TIMEOUT + 3 * START_TIMEOUT + 30_000});

after(async () => {
  const errors = [];
  const step = (p) => p.catch((err) => { errors.push(err); });
  if (browser) await step(browser.close());
  for (const c of [gateway, backend]) if (c) await step(c.stop());
  if (tmp) await step(rm(tmp, {recursive: true, force: true}));
  if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
});

// ---------------------------------------------------------------- pages

// 5. The chat page as user: signed in, connected through the gateway. Page
// errors, console errors (other than the browser's favicon request) and
// CSP violations are collected.
async function chat(user) {
  const context = await browser.newContext({baseURL: urls.backend});
  context.setDefaultTimeout(UI_TIMEOUT);
  const page = await context.newPage();
  const p = {context, page, errors: []};
  page.on("pageerror", (err) => p.errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource.*404/.test(msg.text())) p.errors.push(msg.text());
  });
  const res = await page.goto("/");
  assert.equal(res.status(), 200);
  await page.fill("#name", user);
  await page.click("#login button");
  await page.waitForFunction((u) => document.getElementById("status").textContent === `connected as ${u}`, user);
  return p;
}

function waitMessage(page, line) {
  return page.waitForFunction((want) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === want), line);
}

function messages(page) {
  return page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));
}

async function closeChats(...chats) {
  for (const c of chats) {
    assert.deepEqual(c.errors, [], "page errors");
    await c.context.close();
  }
}

// Runs the wire protocol over a second WebSocket inside the page (under
// its CSP): signs in as user through the backend, connects, then sends
// each call in order; returns each reply's result or error code.
function rawCalls(page, user, calls) {
  return page.evaluate(async ({user, calls}) => {
    const {wsURL} = await (await fetch("/config.json")).json();
    const res = await fetch("/token", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({user})});
    const {token} = await res.json();
    const ws = new WebSocket(wsURL, "livegate.v1");
    const replies = new Map();
    let wake = () => {};
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.id) {
        replies.set(f.id, f);
        wake();
      }
    };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("websocket error")); });
    const out = [];
    let id = 0;
    for (const [method, params] of [["connect", {token}], ...calls]) {
      id++;
      ws.send(JSON.stringify({id, method, params}));
      while (!replies.has(id)) await new Promise((r) => { wake = r; setTimeout(r, 100); });
      const f = replies.get(id);
      out.push(f.error ? {error: f.error.code} : {result: f.result});
    }
    ws.close();
    return out;
  }, {user, calls});
}

// A request to the backend's proxy routes, signed as docs/proxy.md says
// with secret (or not at all when secret is null).
function proxyRequest(route, body, {secret, timestamp = Math.floor(Date.now() / 1000), nonce = randomBytes(16).toString("base64url")} = {}) {
  const raw = JSON.stringify(body);
  const headers = {"Content-Type": "application/json"};
  if (secret !== null) {
    const uri = `/livegate/${route}`;
    const canonical = `POST\n${uri}\n${timestamp}\n${nonce}\n${createHash("sha256").update(raw).digest("hex")}`;
    headers["Livegate-Timestamp"] = String(timestamp);
    headers["Livegate-Nonce"] = nonce;
    headers["Livegate-Signature"] = "v1=" + createHmac("sha256", secret).update(canonical).digest("hex");
  }
  return fetch(`${urls.backend}/livegate/${route}`, {method: "POST", headers, body: raw});
}

// ---------------------------------------------------------------- tests

test("two users chat through the gateway: event route send, backend publication", {timeout: TEST_TIMEOUT}, async () => {
  const alice = await chat("alice");
  const bob = await chat("bob");
  const text = `hello bob <img src=x onerror="window.__pwned=1"> ${Date.now()}`;
  await alice.page.fill("#text", text);
  await alice.page.click("#send button");
  await waitMessage(bob.page, `alice: ${text}`);
  await waitMessage(alice.page, `alice: ${text}`);
  assert.equal(await alice.page.inputValue("#text"), "", "the sender's input is cleared once the event is answered");
  assert.equal(await bob.page.evaluate(() => typeof window.__pwned), "undefined", "markup ran");
  assert.equal(await bob.page.$$eval("#messages img", (imgs) => imgs.length), 0, "markup became elements");
  // The backend's event route refuses an empty or oversized text.
  await alice.page.evaluate(() => { document.getElementById("text").removeAttribute("maxlength"); });
  await alice.page.fill("#text", "x".repeat(501));
  await alice.page.click("#send button");
  await alice.page.waitForFunction(() => document.getElementById("status").textContent === "not sent: bad_request");
  await sleep(300);
  assert.ok(!(await messages(bob.page)).some((m) => m.includes("xxxxx")), "an oversized message was published");
  await closeChats(alice, bob);
});

test("the backend publishes through POST /api/publish with its API key", {timeout: TEST_TIMEOUT}, async () => {
  const carol = await chat("carol");
  const dave = await chat("dave");
  // The backend's publish path (/announce → POST /api/publish with the key).
  const text = `maintenance at noon ${Date.now()}`;
  const res = await fetch(`${urls.backend}/announce`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text})});
  assert.equal(res.status, 200, await res.clone().text());
  const pub = await res.json();
  assert.equal(pub.channel, "room:lobby");
  await waitMessage(carol.page, `system: ${text}`);
  await waitMessage(dave.page, `system: ${text}`);
  // The API directly: the key works; a forged key and a key outside its
  // scope are refused, and nothing reaches the page.
  const api = (key, channel, data) => fetch(`${urls.gateway}/api/publish`, {
    method: "POST",
    headers: {"Authorization": `Bearer ${key}`, "Content-Type": "application/json"},
    body: JSON.stringify({channel, data}),
  });
  const direct = `direct ${Date.now()}`;
  assert.equal((await api(apiKey, "room:lobby", {user: "api", text: direct})).status, 200);
  await waitMessage(dave.page, `api: ${direct}`);
  const forged = apiKey.slice(0, -4) + (apiKey.endsWith("AAAA") ? "BBBB" : "AAAA");
  assert.equal((await api(forged, "room:lobby", {user: "api", text: "forged"})).status, 401);
  assert.equal((await api("", "room:lobby", {user: "api", text: "nokey"})).status, 401);
  assert.equal((await api(apiKey, "news:lobby", {user: "api", text: "scope"})).status, 403);
  // A cross-site style request to /announce (not JSON) is refused.
  const form = await fetch(`${urls.backend}/announce`, {method: "POST", headers: {"Content-Type": "text/plain"}, body: JSON.stringify({text: "csrf"})});
  assert.equal(form.status, 415);
  await sleep(300);
  const seen = await dave.page.evaluate(() => document.getElementById("messages").textContent);
  for (const t of ["forged", "nokey", "scope", "csrf"]) assert.ok(!seen.includes(t), `"${t}" was published`);
  await closeChats(carol, dave);
});

test("the backend decides subscriptions and only listed events reach it", {timeout: TEST_TIMEOUT}, async () => {
  const erin = await chat("erin");
  const got = await rawCalls(erin.page, "erin2", [
    ["subscribe", {channel: "room:general"}],
    ["subscribe", {channel: "room:staff"}],
    ["subscribe", {channel: "news:today"}],
    ["event", {name: "send", payload: {text: "from the raw socket"}}],
    ["event", {name: "delete_all", payload: {}}],
  ]);
  assert.equal(got[0].result?.user, "erin2", `connect: ${JSON.stringify(got[0])}`);
  assert.ok(!got[1].error, `room:general: ${JSON.stringify(got[1])}`);
  assert.equal(got[2].error, "forbidden", "room:staff is refused by the backend");
  assert.ok(got[3].error, "a namespace that is not configured is refused");
  assert.deepEqual(got[4].result, {ok: true});
  assert.equal(got[5].error, "not_available", "an event outside proxy.events");
  await waitMessage(erin.page, "erin2: from the raw socket");
  await closeChats(erin);
});

test("the backend refuses proxy requests not signed by the gateway", {timeout: TEST_TIMEOUT}, async () => {
  const body = {conn_id: "forged-1", client_ip: "203.0.113.9", identity: {sub: "mallory"}};
  const refused = async (res, what) => {
    assert.equal(res.status, 401, what);
    assert.deepEqual(await res.json(), {error: "unauthorized"}, what);
  };
  await refused(await proxyRequest("connect", body, {secret: null}), "unsigned");
  await refused(await proxyRequest("connect", body, {secret: randomBytes(48).toString("base64")}), "signed with another secret");
  await refused(await proxyRequest("event", {...body, event: "send", payload: {text: "x"}}, {secret: null}), "unsigned event");
  const stale = Math.floor(Date.now() / 1000) - 3600;
  await refused(await proxyRequest("connect", body, {secret: proxySecret, timestamp: stale}), "stale");
  // Signed with the gateway's secret it is accepted once; the same nonce
  // again is a replay.
  const nonce = randomBytes(16).toString("base64url");
  const timestamp = Math.floor(Date.now() / 1000);
  const ok = await proxyRequest("connect", body, {secret: proxySecret, nonce, timestamp});
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {user: "mallory", channels: ["room:lobby"]});
  await refused(await proxyRequest("connect", body, {secret: proxySecret, nonce, timestamp}), "replayed");
  assert.match(backend.output, /refused proxy request: bad_signature/);
  assert.match(backend.output, /refused proxy request: stale/);
  assert.match(backend.output, /refused proxy request: replayed/);
});
