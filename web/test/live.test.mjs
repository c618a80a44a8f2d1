// Browser tests of the demo's accounts, live view and live operation in
// headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
// no browser is ever downloaded), run by node's test runner through
// scripts/browser-test. Like demo.test.mjs, the suite builds cmd/livegate,
// runs it on a free loopback port and stops it at the end, also on failure.
//
// Every page records Content-Security-Policy violations (an init script,
// which the page's CSP does not apply to) and dialogs; every test asserts
// there were none.
//
// Environment: LIVEGATE_SCREENSHOT_DIR overrides where the screenshots of
// the demo go (default build/screenshots/ in the repository, git-ignored).

import {after, afterEach, before, describe, test} from "node:test";
import assert from "node:assert/strict";
import {execFile, spawn} from "node:child_process";
import {mkdirSync, rmSync} from "node:fs";
import {mkdtemp, rm} from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {promisify} from "node:util";

import {chromium} from "playwright-core";

const execFileP = promisify(execFile);

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
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
const SCREENSHOT_DIR = process.env.LIVEGATE_SCREENSHOT_DIR || path.join(REPO, "build", "screenshots");

const BUILD_TIMEOUT = 180_000;
const LISTEN_TIMEOUT = 10_000;
const UI_TIMEOUT = 5_000;
const TASK_TIMEOUT = 15_000; // the long task takes about 5 s
const TEST_TIMEOUT = 40_000;
const SUITE_TIMEOUT = 110_000;

// Markup that must only ever show as text. Running it sets window.__pwned.
const XSS = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
// The log line every long task writes (internal/demo.MarkupLogLine).
const MARKUP_LOG_LINE = "A line with markup, shown as text: <img src=x onerror=alert(1)>";

// ---------------------------------------------------------------- server

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

// The dev server as a child process; it prints the demo password.
class DevServer {
  constructor(bin, dir) {
    this.bin = bin;
    this.dir = dir;
    this.output = "";
    this.exited = null;
  }

  async start() {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const env = {...process.env};
    delete env.LIVEGATE_AUDIENCE;
    const args = ["--addr", `127.0.0.1:${this.port}`, "--db", path.join(this.dir, "dev.db")];
    // No admin listener where the binary has one: its fixed default port
    // would clash with another suite's server.
    const {stdout: help} = await execFileP(this.bin, ["--help"], {timeout: 10_000});
    if (help.includes("--admin-addr")) args.push("--admin-addr=");
    this.child = spawn(this.bin, args, {cwd: this.dir, env, stdio: ["ignore", "pipe", "pipe"]});
    const keep = (chunk) => { this.output = (this.output + chunk).slice(-50_000); };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => { this.exited = {code, signal}; resolve(); });
    });
    const deadline = Date.now() + LISTEN_TIMEOUT;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`livegate exited early (${JSON.stringify(this.exited)}):\n${this.output}`);
      const m = /demo sign-in: users (.+), password (\S+)/.exec(this.output);
      if (m) {
        this.users = m[1].split(", ");
        this.password = m[2];
        return;
      }
      await sleep(50);
    }
    throw new Error(`livegate did not print the demo password within ${LISTEN_TIMEOUT} ms:\n${this.output}`);
  }

  async stop() {
    if (!this.child || this.exited) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => { if (!this.exited) this.child.kill("SIGKILL"); }, 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  killNow() {
    if (this.child && !this.exited) this.child.kill("SIGKILL");
  }
}

let tmp;
let server;
let browser;
const contexts = new Set();

process.on("exit", () => {
  if (server) server.killNow();
  if (tmp) rmSync(tmp, {recursive: true, force: true});
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "livegate-live-"));
  const bin = path.join(tmp, "livegate");
  await execFileP("go", ["build", "-o", bin, "./cmd/livegate"], {cwd: REPO, timeout: BUILD_TIMEOUT, maxBuffer: 16 << 20});
  server = new DevServer(bin, tmp);
  await server.start();
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000});
}, {timeout: BUILD_TIMEOUT + LISTEN_TIMEOUT + 30_000});

after(async () => {
  const errors = [];
  const step = (p) => p.catch((err) => { errors.push(err); });
  if (browser) await step(browser.close());
  if (server) await step(server.stop());
  if (tmp) await step(rm(tmp, {recursive: true, force: true}));
  if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
});

// ---------------------------------------------------------------- pages

const DESKTOP = {width: 1280, height: 900};
const PHONE = {width: 390, height: 844};

// Saves a full-page screenshot under SCREENSHOT_DIR (a build output,
// never committed).
async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, {recursive: true});
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({path: path.join(SCREENSHOT_DIR, name), fullPage: true});
}

// A fresh context and page. Page errors, console errors, CSP violations
// and dialogs are collected (dialogs are dismissed).
async function openPage({viewport = DESKTOP, shared = false} = {}) {
  const context = await browser.newContext({baseURL: server.url, viewport});
  if (!shared) contexts.add(context);
  context.setDefaultTimeout(UI_TIMEOUT);
  context.setDefaultNavigationTimeout(10_000);
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const p = {context, page, pageErrors: [], consoleErrors: [], csp: [], dialogs: []};
  page.on("pageerror", (err) => p.pageErrors.push(String(err && err.stack ? err.stack : err)));
  page.on("console", (msg) => {
    const text = msg.text();
    if (/Content.Security.Policy/i.test(text)) p.csp.push(text);
    if (msg.type() === "error") p.consoleErrors.push(text);
  });
  page.on("dialog", (d) => {
    p.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  return p;
}

async function closeAll() {
  const all = [...contexts];
  contexts.clear();
  await Promise.all(all.map((c) => c.close().catch(() => {})));
}

// Forgets what a page recorded so far (pages shared between tests).
async function reset(p) {
  p.pageErrors.length = 0;
  p.consoleErrors.length = 0;
  p.csp.length = 0;
  p.dialogs.length = 0;
}

// Asserts that nothing ran or was blocked that should not have. Refused
// requests (expected 401, 403, 429) show as "Failed to load resource"
// console errors; allowRefused lets them through.
async function assertClean(p, {allowRefused = false} = {}) {
  assert.deepEqual(p.pageErrors, [], "uncaught page errors");
  assert.deepEqual(p.dialogs, [], "a dialog opened: injected code ran");
  assert.deepEqual(p.csp, [], "CSP violations in the console");
  let state = {csp: [], pwned: "undefined"};
  try {
    state = await p.page.evaluate(() => ({csp: window.__csp || [], pwned: typeof window.__pwned}));
  } catch { /* page closed */ }
  assert.deepEqual(state.csp, [], "securitypolicyviolation events");
  assert.equal(state.pwned, "undefined", "injected code ran");
  const errors = allowRefused ? p.consoleErrors.filter((e) => !/Failed to load resource/.test(e)) : p.consoleErrors;
  assert.deepEqual(errors, [], "console errors");
}

// Signs in through the form; the page reloads as the account, connects and
// joins the board.
async function signedIn(user, opts) {
  const p = await openPage(opts);
  const res = await p.page.goto("/");
  assert.equal(res.status(), 200);
  await p.page.fill("#user", user);
  await p.page.fill("#password", server.password);
  await p.page.click("#signin");
  await p.page.waitForSelector('#status[data-state="connected"]');
  assert.equal(await p.page.textContent("#whoami"), `as ${user}`);
  assert.equal(await p.page.textContent("#kind"), "account");
  await p.page.waitForSelector('[data-lg-view="board"][data-lg-state="joined"]');
  return p;
}

function count(page) {
  return page.textContent("#board-count");
}

async function waitCount(page, n) {
  await page.waitForFunction((want) => document.getElementById("board-count")?.textContent === String(want), n);
}

function boardPosts(page) {
  return page.$$eval("#board-feed > li:not(.empty)", (lis) => lis.map((li) => ({
    user: li.querySelector(".user")?.textContent,
    text: li.querySelector(".text")?.textContent,
    mine: li.classList.contains("mine"),
  })));
}

async function waitPost(page, user, text) {
  await page.waitForFunction(([u, t]) => [...document.querySelectorAll("#board-feed > li")].some(
    (li) => li.querySelector(".user")?.textContent === u && li.querySelector(".text")?.textContent === t), [user, text]);
}

// Starts a long task from the page's form; resolves with its id once the
// widget follows it.
async function startTask(page, label, {fail = false} = {}) {
  await page.fill("#task-label", label);
  await page.setChecked("#task-fail", fail);
  const before = await page.getAttribute("#task", "data-op");
  await page.click("#task-start");
  await page.waitForFunction((old) => {
    const t = document.getElementById("task");
    return t && !t.hidden && t.dataset.op && t.dataset.op !== old;
  }, before);
  return page.getAttribute("#task", "data-op");
}

function waitTaskState(page, state, timeout = TASK_TIMEOUT) {
  return page.waitForFunction((s) => document.getElementById("task")?.getAttribute("data-lg-op-state") === s &&
    document.getElementById("task-state")?.textContent === s, state, {timeout});
}

function taskView(page) {
  return page.evaluate(() => {
    const t = document.getElementById("task");
    const part = (n) => t.querySelector(`[data-lg-op-part="${n}"]`);
    return {
      id: t.dataset.op,
      state: t.getAttribute("data-lg-op-state"),
      percent: part("percent").value,
      pct: document.getElementById("task-pct").textContent,
      status: part("status").textContent,
      error: part("error").hidden ? null : part("error").textContent,
      result: part("result").hidden ? null : part("result").textContent,
      log: [...part("log").children].map((li) => li.textContent),
      chunks: document.querySelector("#task-chunks .chunks-label")?.textContent ?? null,
      markup: t.querySelectorAll("img, script, iframe, object, [onerror], [onclick]").length,
      cancel: document.getElementById("task-cancel").disabled,
      restart: document.getElementById("task-restart").disabled,
    };
  });
}

// Runs protocol v1 commands over a raw WebSocket from the page, as its user
// or another name, skipping the page's client. Each command is
// [method, params]; the reply is its error code or "ok".
function rawSocket(page, user, commands) {
  return page.evaluate(async ([user, commands]) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const res = await fetch("/dev/token", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify({user})});
    const {token} = await res.json();
    const ws = new WebSocket(`ws://${location.host}/ws`, "livegate.v1");
    const waiting = new Map();
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (waiting.has(msg.id)) { waiting.get(msg.id)(msg); waiting.delete(msg.id); }
    };
    let id = 0;
    const send = (method, params) => new Promise((resolve, reject) => {
      const n = ++id;
      waiting.set(n, resolve);
      ws.send(JSON.stringify({id: n, method, params}));
      setTimeout(() => reject(new Error(`no reply to ${method}`)), 3000);
    });
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("ws error")); });
    const out = [];
    const connect = await send("connect", {token});
    out.push(connect.error ? connect.error.code : "ok");
    for (const [method, params] of commands) {
      const r = await send(method, params);
      out.push(r.error ? r.error.code : "ok");
    }
    ws.close(1000);
    return out;
  }, [user, commands]);
}

function csrfOf(page) {
  return page.getAttribute('meta[name="csrf-token"]', "content");
}

// ---------------------------------------------------------------- tests

// The gateway's abuse limits apply to the suite as to anybody: every page
// and raw socket here comes from 127.0.0.1, which may open 20 WebSockets a
// minute and fetch 30 tokens (10 per user). So alice's and bob's pages are
// shared by the tests (one connection each), and reloads and raw sockets
// are few.
describe("livegate live demo in Chromium", {timeout: SUITE_TIMEOUT}, () => {
  let alice;
  let bob;

  before(async () => {
    alice = await signedIn("alice", {shared: true});
    bob = await signedIn("bob", {shared: true});
  });

  after(async () => {
    for (const p of [alice, bob]) if (p) await p.context.close().catch(() => {});
  });

  afterEach(async () => {
    await closeAll();
    for (const p of [alice, bob]) if (p) await reset(p);
  });

  test("sign-in with a password; lockout after wrong passwords; registration; sign-out", {timeout: TEST_TIMEOUT}, async () => {
    const p = await openPage({viewport: PHONE});
    await p.page.goto("/");
    await screenshot(p.page, "demo-phone-signed-out.png");
    await p.page.setViewportSize(DESKTOP);
    const notice = p.page.locator("#auth-notice");
    for (let i = 0; i < 3; i++) {
      await p.page.fill("#user", "carol");
      await p.page.fill("#password", `not the password ${i}`);
      await p.page.click("#signin");
      await notice.filter({hasText: "Wrong user name or password."}).waitFor();
      assert.equal(await p.page.getAttribute("#status", "data-state"), "signed-out");
      await p.page.evaluate(() => { document.getElementById("auth-notice").textContent = ""; });
    }
    // Locked now: even the right password is refused, with a countdown.
    await p.page.fill("#password", server.password);
    await p.page.click("#signin");
    await notice.filter({hasText: /Try again in \d+ s\./}).waitFor();
    assert.match(await notice.textContent(), /^Too many failed attempts\. Try again in [1-5] s\.$/);
    assert.equal(await p.page.isDisabled("#signin"), true, "sign-in stays enabled while locked");
    assert.equal(await p.page.getAttribute("#status", "data-state"), "signed-out");

    // Registration enforces the password policy, then signs in.
    const reg = p.page.locator("#register-notice");
    await p.page.click("#register summary");
    await p.page.fill("#reg-user", "dana");
    for (const [pw, why] of [["short pass", /at least 12 characters/], ["password1234", /common passwords/], ["dana is my name ok", /user name/]]) {
      await p.page.fill("#reg-password", pw);
      await p.page.click("#register-submit");
      await reg.filter({hasText: why}).waitFor();
    }
    await p.page.fill("#reg-password", "plum otter quartz lantern");
    await p.page.click("#register-submit");
    await p.page.waitForSelector('#status[data-state="connected"]');
    assert.equal(await p.page.textContent("#whoami"), "as dana");
    assert.equal(await p.page.textContent("#kind"), "account");
    await p.page.waitForSelector('[data-lg-view="board"][data-lg-state="joined"]');

    // The session cookie is HttpOnly and SameSite=Strict.
    const session = (await p.context.cookies()).find((c) => c.name === "livegate_session");
    assert.ok(session, "no session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(await p.page.evaluate(() => document.cookie.includes("livegate_session")), false);

    // Sign out: back to the sign-in form, the connection closed.
    await p.page.click("#signout");
    await p.page.waitForSelector("#signin-form");
    assert.equal(await p.page.getAttribute("#status", "data-state"), "signed-out");
    assert.equal(await p.page.locator("[data-lg-view]").count(), 0);
    assert.equal((await p.context.cookies()).some((c) => c.name === "livegate_session"), false);
    await assertClean(p, {allowRefused: true});
  });

  test("the live board: counter and posts shared between two contexts, markup as text", {timeout: TEST_TIMEOUT}, async () => {
    const start = Number(await count(alice.page));
    assert.equal(await count(bob.page), String(start));

    await alice.page.click("#board-inc");
    await alice.page.click("#board-inc");
    await waitCount(alice.page, start + 2);
    await waitCount(bob.page, start + 2);
    await bob.page.click("#board-dec");
    await waitCount(bob.page, start + 1);
    await waitCount(alice.page, start + 1);
    assert.equal(await alice.page.textContent("#board-by"), "Last change by bob");

    await alice.page.fill("#board-text", "hello bob");
    await alice.page.click("#board-send");
    await waitPost(bob.page, "alice", "hello bob");
    await bob.page.fill("#board-text", XSS);
    await bob.page.press("#board-text", "Enter");
    await waitPost(alice.page, "bob", XSS);
    await waitPost(bob.page, "bob", XSS);
    // The post field empties once the post shows.
    await bob.page.waitForFunction(() => document.getElementById("board-text").value === "");
    await sleep(300); // time for a broken renderer to load the image and fire onerror
    for (const p of [alice, bob]) {
      const posts = await boardPosts(p.page);
      assert.deepEqual(posts.slice(-2).map(({user, text}) => ({user, text})),
        [{user: "alice", text: "hello bob"}, {user: "bob", text: XSS}]);
      assert.equal(await p.page.locator("#board img, #board script").count(), 0, "markup rendered in the board");
      assert.equal(await p.page.locator("img").count(), 0, "an <img> appeared in the page");
    }
    assert.equal((await boardPosts(bob.page)).at(-1).mine, true);
    assert.equal((await boardPosts(alice.page)).at(-1).mine, false);

    // The room chat works for accounts too (and sets the scene for the
    // screenshots).
    for (const p of [alice, bob]) {
      await p.page.fill("#room", "lobby");
      await p.page.click("#join");
      await p.page.waitForFunction(() => [...document.querySelectorAll("#log li")].some((li) => li.textContent === "Joined lobby."));
    }
    await bob.page.fill("#text", "Morning! Is the long task done yet?");
    await bob.page.click("#send");
    await alice.page.locator("#log .text", {hasText: "Morning!"}).waitFor();
    await alice.page.fill("#text", "Starting it now: watch the board.");
    await alice.page.click("#send");
    await bob.page.locator("#log .text", {hasText: "Starting it now"}).waitFor();

    // A reload renders the same state on the server (the first render
    // needs no JavaScript), then joins again.
    await bob.page.reload();
    assert.equal(await count(bob.page), String(start + 1));
    await waitPost(bob.page, "bob", XSS);
    await bob.page.waitForSelector('[data-lg-view="board"][data-lg-state="joined"]');
    await bob.page.waitForSelector('#status[data-state="connected"]');
    await assertClean(alice);
    await assertClean(bob);
  });

  test("a view join without the CSRF token is refused", {timeout: TEST_TIMEOUT}, async () => {
    const session = await alice.page.getAttribute('[data-lg-view="board"]', "data-lg-session");
    assert.ok(session.startsWith("lv1."));
    const replies = await rawSocket(alice.page, "alice", [
      ["join", {view: "board", session}],
      ["join", {view: "board", session, csrf: "forged.token"}],
      ["join", {view: "board", session, csrf: await csrfOf(alice.page)}],
    ]);
    assert.deepEqual(replies, ["ok", "forbidden", "forbidden", "ok"]);
    // Another user cannot use alice's view session, even with a CSRF token.
    const bobReplies = await rawSocket(bob.page, "bob", [["join", {view: "board", session, csrf: await csrfOf(bob.page)}]]);
    assert.deepEqual(bobReplies, ["ok", "forbidden"]);
    await assertClean(alice);
    await assertClean(bob);
  });

  test("a long task reports progress to 100 %, markup stays text, the result survives a reload", {timeout: TEST_TIMEOUT}, async () => {
    const id = await startTask(alice.page, XSS);
    assert.match(id, /^[0-9a-f-]{36}$/);
    // Live progress: a value strictly between 0 and 100 shows on the way.
    await alice.page.waitForFunction(() => {
      const v = document.getElementById("task-progress").value;
      return v > 0 && v < 100;
    }, undefined, {timeout: TASK_TIMEOUT});
    const running = await taskView(alice.page);
    assert.equal(running.state, "running");
    assert.equal(running.cancel, false);
    assert.equal(running.restart, true);
    await alice.page.waitForFunction(() => document.getElementById("task-progress").value >= 60, undefined, {timeout: TASK_TIMEOUT});
    await screenshot(alice.page, "demo-desktop.png");
    await waitTaskState(alice.page, "done");
    await sleep(300);

    const done = await taskView(alice.page);
    assert.equal(done.percent, 100);
    assert.equal(done.pct, "100 %");
    assert.equal(done.chunks, "20 / 20 chunks");
    assert.equal(done.status, `Done: “${XSS}”.`);
    assert.ok(done.result && done.result.startsWith(`Processed 20 chunks of “${XSS}” in`), `result ${done.result}`);
    assert.equal(done.error, null);
    assert.ok(done.log.includes(MARKUP_LOG_LINE), "the markup log line is missing");
    assert.ok(done.log.includes(`Started on “${XSS}”.`), `log ${JSON.stringify(done.log)}`);
    assert.ok(done.log.includes(`step 20: writing chunk 20 of “${XSS}”`));
    assert.equal(done.markup, 0, "markup rendered in the task widget");
    assert.equal(done.cancel, true);
    assert.equal(done.restart, false);

    // A reload renders the persisted snapshot: the same result and state.
    await alice.page.reload();
    const reloaded = await taskView(alice.page);
    assert.deepEqual(reloaded, done);
    assert.equal(await alice.page.locator("img").count(), 0);
    await alice.page.waitForSelector('#status[data-state="connected"]');
    await alice.page.waitForSelector('[data-lg-view="board"][data-lg-state="joined"]');

    // Phone-sized: nothing overflows sideways.
    await alice.page.setViewportSize(PHONE);
    await screenshot(alice.page, "demo-phone.png");
    const overflow = await alice.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await alice.page.setViewportSize(DESKTOP);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    await assertClean(alice);
  });

  test("a failing task shows its error as text; restart and cancel work", {timeout: TEST_TIMEOUT}, async () => {
    const id = await startTask(alice.page, XSS, {fail: true});
    await waitTaskState(alice.page, "failed");
    const failed = await taskView(alice.page);
    assert.equal(failed.error, `Could not process “${XSS}”: a simulated failure at step 10.`);
    assert.equal(failed.result, null);
    assert.equal(failed.markup, 0);
    assert.equal(failed.restart, false, "restart disabled after a failure");

    // Restart: a new operation with the same label, followed live.
    await alice.page.click("#task-restart");
    await alice.page.waitForFunction((old) => document.getElementById("task").dataset.op !== old, id);
    const restarted = await alice.page.getAttribute("#task", "data-op");
    await alice.page.waitForFunction(() => document.getElementById("task-progress").value > 0, undefined, {timeout: TASK_TIMEOUT});
    const view = await taskView(alice.page);
    assert.equal(view.state, "running");
    assert.equal(view.error, null, "the old error stayed on the widget");
    assert.ok(view.log.includes(`Started on “${XSS}”.`), "the restart lost the label");

    // Cancel: the task ends "cancelled" before 100 %.
    await alice.page.click("#task-cancel");
    await waitTaskState(alice.page, "cancelled");
    const cancelled = await taskView(alice.page);
    assert.equal(cancelled.id, restarted);
    assert.ok(cancelled.percent < 100, `cancelled at ${cancelled.percent}`);
    assert.match(cancelled.status, /^Cancelled at \d+ %\.$/);
    assert.equal(cancelled.cancel, true);
    assert.equal(cancelled.restart, false);
    // The store has it: a fresh render (no new connection) shows it too.
    const html = await (await alice.page.request.get("/")).text();
    assert.match(html, new RegExp(`data-op="${restarted}" data-lg-op-seq="\\d+" data-lg-op-state="cancelled"`));
    await assertClean(alice);
  });

  test("cancel and restart need the CSRF token and the owner; others cannot join the channel", {timeout: TEST_TIMEOUT}, async () => {
    const id = await startTask(alice.page, "alice's task");
    const post = (p, url, withToken) => p.page.evaluate(async ([url, withToken]) => {
      const headers = withToken ? {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content} : {};
      const res = await fetch(url, {method: "POST", headers});
      return res.status;
    }, [url, withToken]);

    // Alice's own page without the token; page.request (no Fetch Metadata
    // either) without it.
    assert.equal(await post(alice, `/ops/cancel/${id}`, false), 403);
    assert.equal(await post(alice, `/ops/restart/${id}`, false), 403);
    assert.equal((await alice.page.request.post(`/ops/cancel/${id}`)).status(), 403);
    // Bob's page, with his own valid token and session.
    assert.equal(await post(bob, `/ops/cancel/${id}`, true), 403);
    assert.equal(await post(bob, `/ops/restart/${id}`, true), 403);
    assert.equal((await bob.page.request.get(`/ops/${id}`)).status(), 404);
    assert.equal((await taskView(alice.page)).state, "running", "a refused request touched the task");

    // Bob cannot join op:<id>: not as himself, nor with a bare-name token
    // for "alice" from /dev/token (no login session: no member group).
    const channel = `op:${id}`;
    assert.deepEqual(await rawSocket(bob.page, "bob", [["subscribe", {channel}]]), ["ok", "forbidden"]);
    assert.deepEqual(await rawSocket(bob.page, "alice", [["subscribe", {channel}]]), ["ok", "forbidden"]);
    // Alice can (her page does), and cannot publish into it.
    assert.deepEqual(await rawSocket(alice.page, "alice", [
      ["subscribe", {channel}],
      ["publish", {channel, data: {op: id, type: "result", html: XSS}}],
    ]), ["ok", "ok", "forbidden"]);

    // With the token, alice cancels, once.
    assert.equal(await post(alice, `/ops/cancel/${id}`, true), 200);
    await waitTaskState(alice.page, "cancelled");
    assert.equal(await post(alice, `/ops/cancel/${id}`, true), 409);
    await assertClean(alice, {allowRefused: true});
    await assertClean(bob, {allowRefused: true});
  });

  test("CSP with a per-request nonce; the page works under it", {timeout: TEST_TIMEOUT}, async () => {
    const p = await openPage();
    const res = await p.page.goto("/");
    const csp = (await res.allHeaders())["content-security-policy"] || "";
    const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    assert.ok(nonce, `no nonce in ${csp}`);
    const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    for (const d of ["script-src", "style-src"]) {
      assert.ok(directives[d].includes(`'nonce-${nonce}'`), `${d} without the nonce`);
      assert.ok(!directives[d].some((v) => /unsafe-inline|unsafe-eval|^\*$|^data:$/.test(v)), `weak ${d}: ${directives[d]}`);
    }
    assert.deepEqual(directives["frame-ancestors"], ["'none'"]);
    assert.deepEqual(directives["object-src"], ["'none'"]);
    // The page's script and stylesheet carry this response's nonce.
    const tags = await p.page.evaluate(() => ({
      script: document.querySelector('script[src="/demo.js"]').nonce,
      style: document.querySelector('link[href="/demo.css"]').nonce,
      inline: [...document.scripts].filter((s) => !s.src).length,
    }));
    assert.deepEqual(tags, {script: nonce, style: nonce, inline: 0});
    // A new response, a new nonce.
    const again = await p.page.request.get("/");
    assert.ok(!again.headers()["content-security-policy"].includes(nonce), "nonce reused");

    // The whole page works under the policy: sign in, board, task, chat.
    await p.page.fill("#user", "carol");
    await p.page.fill("#password", server.password);
    await p.page.click("#signin");
    await p.page.waitForSelector('[data-lg-view="board"][data-lg-state="joined"]');
    const before = Number(await count(p.page));
    await p.page.click("#board-inc");
    await waitCount(p.page, before + 1);
    await p.page.fill("#room", "csp");
    await p.page.click("#join");
    await p.page.waitForFunction(() => [...document.querySelectorAll("#log li")].some((li) => li.textContent === "Joined csp."));
    await assertClean(p);

    // An injected inline script is still refused (and reported).
    const probe = await p.page.evaluate(async () => {
      const s = document.createElement("script");
      s.textContent = "window.__inlineRan = true;";
      document.body.append(s);
      await new Promise((r) => setTimeout(r, 100));
      return {ran: window.__inlineRan === true, seen: window.__csp.splice(0)};
    });
    assert.equal(probe.ran, false);
    assert.equal(probe.seen.length, 1, `violations ${probe.seen}`);
  });
});
