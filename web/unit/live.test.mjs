// Unit tests of the live-view and live-operation logic of livegate.js in
// plain node: a scripted fake WebSocket plays the server, a few fake DOM
// elements stand in for the page, and stand-ins for DOMPurify and idiomorph
// record what would be sanitised and morphed. What the real libraries do
// in a real browser is the browser tests' job (web/test).

import {test, describe, beforeEach, afterEach} from "node:test";
import assert from "node:assert/strict";

import {Client, LivegateError} from "../livegate.js";

// ---- fake DOM ----

// Matches the simple selectors livegate.js uses: tag, [attr], [attr="v"],
// tag[attr="v"].
function matches(el, selector) {
  const m = /^([a-z]*)(?:\[([\w-]+)(?:="([^"]*)")?\])?$/.exec(selector);
  if (!m) throw new Error("fake DOM: unsupported selector " + selector);
  const [, tag, attr, value] = m;
  if (tag && el.localName !== tag) return false;
  if (attr && !el.hasAttribute(attr)) return false;
  if (attr && value !== undefined && el.getAttribute(attr) !== value) return false;
  return true;
}

class FakeDocument {
  constructor() {
    this.head = new FakeElement("head", {}, this);
    this.body = new FakeElement("body", {}, this);
  }
  createElement(tag) { return new FakeElement(tag, {}, this); }
  querySelector(sel) { return this.head.querySelector(sel) || this.body.querySelector(sel); }
  querySelectorAll(sel) { return [...this.head.querySelectorAll(sel), ...this.body.querySelectorAll(sel)]; }
}

class FakeElement {
  constructor(tag, attrs = {}, doc = null) {
    this.localName = tag;
    this.attrs = new Map(Object.entries(attrs));
    this.doc = doc;
    this.parent = null;
    this.kids = [];
    this.listeners = new Map();
    this.isConnected = true;
    this.hidden = attrs.hidden !== undefined;
    this.text = "";
    this.scrollTop = 0;
    this.scrollHeight = 0;
    this.clientHeight = 0;
  }
  get ownerDocument() { return this.doc || this.parent?.ownerDocument || null; }
  get id() { return this.getAttribute("id") || ""; }
  get attributes() { return [...this.attrs].map(([name, value]) => ({name, value})); }
  getAttribute(n) { return this.attrs.has(n) ? this.attrs.get(n) : null; }
  setAttribute(n, v) { this.attrs.set(n, String(v)); }
  hasAttribute(n) { return this.attrs.has(n); }
  add(...kids) {
    for (const k of kids) {
      k.parent = this;
      this.kids.push(k);
    }
    return this;
  }
  append(...kids) { this.add(...kids); }
  replaceChildren(...kids) { this.kids = []; this.text = ""; this.add(...kids); }
  set textContent(v) { this.kids = []; this.text = String(v); }
  get textContent() { return this.text + this.kids.map((k) => k.textContent).join(""); }
  get childElementCount() { return this.kids.length; }
  get firstElementChild() { return this.kids[0] || null; }
  remove() {
    if (this.parent) this.parent.kids = this.parent.kids.filter((k) => k !== this);
    this.parent = null;
  }
  closest(sel) {
    for (let el = this; el; el = el.parent) if (el instanceof FakeElement && matches(el, sel)) return el;
    return null;
  }
  *walk() {
    for (const k of this.kids) {
      if (!(k instanceof FakeElement)) continue;
      yield k;
      yield* k.walk();
    }
  }
  querySelectorAll(sel) { return [...this.walk()].filter((el) => matches(el, sel)); }
  querySelector(sel) { return this.querySelectorAll(sel)[0] || null; }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }
  removeEventListener(type, fn) { this.listeners.get(type)?.delete(fn); }
  dispatchEvent(ev) {
    this.events = this.events || [];
    this.events.push(ev);
    return true;
  }
  // Fires a DOM-like event at this element, bubbling to its ancestors.
  fire(type, extra = {}) {
    const ev = {type, target: this, defaultPrevented: false, preventDefault() { this.defaultPrevented = true; }, ...extra};
    for (let el = this; el; el = el.parent) for (const fn of el.listeners.get(type) || []) fn(ev);
    return ev;
  }
}

const el = (tag, attrs = {}, ...kids) => new FakeElement(tag, attrs).add(...kids);

// Marker nodes for what the fake DOMPurify "returns".
class Fragment {
  constructor(html) { this.html = html; }
  get textContent() { return `[sanitized ${this.html}]`; }
}

function fakeLibs() {
  const libs = {sanitized: [], morphs: [], hooks: []};
  libs.DOMPurify = {
    isSupported: true,
    addHook(name, fn) { libs.hooks.push({name, fn}); },
    sanitize(html, config) {
      libs.sanitized.push({html, config});
      return new Fragment(html);
    },
  };
  libs.Idiomorph = {
    morph(target, content, config) { libs.morphs.push({target, html: content.html, config}); },
  };
  return libs;
}

// ---- fake server ----

class FakeWS {
  static sockets = [];
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    FakeWS.sockets.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  receive(obj) { this.onmessage?.({data: JSON.stringify(obj)}); }
  reply(id, result) { this.receive({id, result}); }
  replyError(id, code) { this.receive({id, error: {code, message: code}}); }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({code, reason: ""});
  }
  // The next frame with method, once it was sent.
  async next(method) {
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline;) {
      const idx = this.sent.findIndex((f) => f.method === method && !f.seen);
      if (idx !== -1) {
        this.sent[idx].seen = true;
        return this.sent[idx];
      }
      await tick(2);
    }
    throw new Error(`no ${method} frame; sent: ${JSON.stringify(this.sent)}`);
  }
  count(method) { return this.sent.filter((f) => f.method === method).length; }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const WAIT_MS = 10000; // generous: a loaded CI machine is slow

async function until(cond, what = "condition") {
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline;) {
    if (cond()) return;
    await tick(2);
  }
  throw new Error("timed out waiting for " + what);
}

const lastSocket = () => FakeWS.sockets[FakeWS.sockets.length - 1];

async function connected(client) {
  const done = client.connect();
  await until(() => FakeWS.sockets.length > 0 && lastSocket().sent.length > 0, "connect frame");
  const ws = lastSocket();
  const c = await ws.next("connect");
  ws.reply(c.id, {client: "c1", user: "alice", expires: Math.floor(Date.now() / 1000) + 3600, ping: 25});
  await done;
  return ws;
}

function page({csrf = "csrf-1", views = [["counter", "sess-1"]]} = {}) {
  const doc = new FakeDocument();
  if (csrf !== null) doc.head.add(new FakeElement("meta", {name: "csrf-token", content: csrf}));
  const els = views.map(([name, session, attrs = {}]) => {
    const v = new FakeElement("div", {"data-lg-view": name, "data-lg-session": session, ...attrs});
    doc.body.add(v);
    return v;
  });
  return {doc, els};
}

let client;
let libs;
let errors;

function newClient(extra = {}) {
  libs = fakeLibs();
  errors = [];
  client = new Client("ws://127.0.0.1:1/ws", {
    getToken: async () => "token",
    WebSocket: FakeWS,
    DOMPurify: libs.DOMPurify,
    Idiomorph: libs.Idiomorph,
    backoffMin: 1,
    backoffMax: 5,
    patchGapTimeout: 30,
    ...extra,
  });
  client.on("error", (e) => errors.push(e));
  return client;
}

beforeEach(() => { FakeWS.sockets = []; });
afterEach(() => { client?.close(); });

// Mounts the page's views and answers their joins.
async function mounted(ws, doc, results = [{ref: "r1", version: 1, html: "<p>0</p>"}]) {
  const mounting = client.mountViews(doc);
  const joins = [];
  for (const result of results) {
    const j = await ws.next("join");
    joins.push(j);
    ws.reply(j.id, result);
  }
  return {views: await mounting, joins};
}

describe("live views", () => {
  test("join carries view, session, csrf and params; the html is sanitised and morphed", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page({views: [["counter", "sess-1", {"data-lg-params": '{"room":"lobby","__proto__":{"polluted":1}}'}]]});
    const {views, joins} = await mounted(ws, doc);
    assert.deepEqual(joins[0].params, {view: "counter", session: "sess-1", csrf: "csrf-1", params: {room: "lobby"}});
    assert.equal(({}).polluted, undefined);
    assert.equal(views.length, 1);
    assert.equal(views[0].ref, "r1");
    assert.equal(views[0].version, 1);
    assert.equal(views[0].state, "joined");
    assert.equal(els[0].getAttribute("data-lg-state"), "joined");
    assert.deepEqual(libs.sanitized.map((s) => s.html), ["<p>0</p>"]);
    assert.equal(libs.morphs.length, 1);
    assert.equal(libs.morphs[0].target, els[0]);
    assert.equal(libs.morphs[0].config.morphStyle, "innerHTML");
    assert.equal(els[0].events.at(-1).type, "lg:update");
  });

  test("the sanitiser config and hook: fragments, forbidden tags, no on*, lg-* kept", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    await mounted(ws, doc);
    const {config} = libs.sanitized[0];
    assert.equal(config.RETURN_DOM_FRAGMENT, true);
    for (const tag of ["script", "style", "iframe", "object", "embed"]) assert.ok(config.FORBID_TAGS.includes(tag), tag);
    const hook = libs.hooks.find((h) => h.name === "uponSanitizeAttribute").fn;
    const run = (attrName) => {
      const data = {attrName, attrValue: "x", keepAttr: true, forceKeepAttr: undefined};
      hook(null, data);
      return data;
    };
    assert.equal(run("onclick").keepAttr, false);
    assert.equal(run("ONERROR").keepAttr, false);
    assert.equal(run("lg-click").forceKeepAttr, true);
    assert.equal(run("lg-value-room").forceKeepAttr, true);
    assert.equal(run("href").forceKeepAttr, undefined, "others follow DOMPurify's rules");
    assert.equal(run("href").keepAttr, true);
  });

  test("refuses to join without <meta name=csrf-token>", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page({csrf: null});
    await assert.rejects(client.mountViews(doc), (err) => err instanceof LivegateError && err.code === "csrf");
    await tick(5);
    assert.equal(ws.count("join"), 0);
    assert.equal(els[0].listeners.size, 0, "no events bound");
    const empty = page({csrf: ""});
    await assert.rejects(client.mountViews(empty.doc), {code: "csrf"});
  });

  test("patch pushes are spliced in order; duplicates ignored", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: "<p>😀 0</p>"}]);
    ws.receive({patch: {ref: "r1", version: 2, start: 6, end: 7, insert: "1"}});
    assert.equal(views[0].version, 2);
    assert.equal(libs.sanitized.at(-1).html, "<p>😀 1</p>");
    ws.receive({patch: {ref: "r1", version: 2, start: 0, end: 0, insert: "dup"}});
    ws.receive({patch: {ref: "other", version: 3, start: 0, end: 0, insert: "x"}});
    assert.equal(libs.sanitized.at(-1).html, "<p>😀 1</p>");
    assert.equal(libs.morphs.length, 2);
  });

  test("a patch that overtakes another waits for it", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: "ab"}]);
    ws.receive({patch: {ref: "r1", version: 3, start: 3, end: 3, insert: "d"}});
    assert.equal(views[0].version, 1);
    ws.receive({patch: {ref: "r1", version: 2, start: 2, end: 2, insert: "c"}});
    assert.equal(views[0].version, 3);
    assert.equal(libs.sanitized.at(-1).html, "abcd");
    await tick(60);
    assert.equal(ws.count("leave"), 0, "no resync");
  });

  test("a version gap leaves and joins again", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: "a"}]);
    ws.receive({patch: {ref: "r1", version: 3, start: 0, end: 0, insert: "x"}});
    const leave = await ws.next("leave");
    assert.deepEqual(leave.params, {ref: "r1"});
    ws.reply(leave.id, {});
    const join = await ws.next("join");
    assert.deepEqual(join.params, {view: "counter", session: "sess-1", csrf: "csrf-1"});
    ws.reply(join.id, {ref: "r2", version: 3, html: "xa"});
    await until(() => views[0].ref === "r2", "rejoin");
    assert.equal(views[0].version, 3);
    assert.equal(libs.sanitized.at(-1).html, "xa");
    ws.receive({patch: {ref: "r1", version: 4, start: 0, end: 0, insert: "old"}});
    ws.receive({patch: {ref: "r2", version: 4, start: 2, end: 2, insert: "!"}});
    assert.equal(libs.sanitized.at(-1).html, "xa!");
  });

  test("a malformed patch resyncs", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    await mounted(ws, doc, [{ref: "r1", version: 1, html: "a😀"}]);
    ws.receive({patch: {ref: "r1", version: 2, start: 2, end: 2, insert: "x"}}); // inside the emoji
    await ws.next("leave");
    await ws.next("join");
    assert.ok(errors.some((e) => e.code === "protocol"));
  });

  test("lg-click sends a view event with lg-value-* and the csrf token; the reply's patch applies", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: "<p>0</p>"}]);
    const label = el("span");
    const button = el("button", {"lg-click": "inc", "lg-value-by": "2", "lg-value-__proto__": "x", "lg-value-": "y"}, label);
    els[0].add(button);
    const ev = label.fire("click");
    assert.equal(ev.defaultPrevented, true);
    const cmd = await ws.next("view");
    assert.deepEqual(cmd.params, {ref: "r1", name: "inc", payload: {by: "2"}, csrf: "csrf-1"});
    ws.reply(cmd.id, {version: 2, patch: {version: 2, start: 3, end: 4, insert: "2"}});
    await until(() => views[0].version === 2, "patch from reply");
    assert.equal(libs.sanitized.at(-1).html, "<p>2</p>");
    assert.equal(libs.morphs.at(-1).config.ignoreActiveValue, false);
  });

  test("clicks outside lg-click or inside a nested view are not this view's", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    await mounted(ws, doc);
    const nested = el("div", {"data-lg-view": "other"}, el("button", {"lg-click": "x"}));
    els[0].add(el("button", {}), nested);
    els[0].kids[0].fire("click");
    nested.kids[0].fire("click");
    await tick(10);
    assert.equal(ws.count("view"), 0);
  });

  test("lg-change sends {name: value} and keeps the focused value", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    await mounted(ws, doc);
    const input = el("input", {"lg-change": "search", name: "q", "lg-value-scope": "all"});
    input.value = "hello";
    els[0].add(input);
    input.fire("change");
    const cmd = await ws.next("view");
    assert.deepEqual(cmd.params.payload, {scope: "all", q: "hello"});
    assert.equal(cmd.params.name, "search");
    ws.reply(cmd.id, {version: 2, patch: {version: 2, start: 0, end: 0, insert: "x"}});
    await until(() => libs.morphs.length === 2, "morph");
    assert.equal(libs.morphs.at(-1).config.ignoreActiveValue, true);
    // Typing sends only with lg-debounce.
    input.fire("input");
    await tick(20);
    assert.equal(ws.count("view"), 1);
    input.setAttribute("lg-debounce", "5");
    input.value = "hello w";
    input.fire("input");
    input.value = "hello wo";
    input.fire("input");
    const typed = await ws.next("view");
    assert.deepEqual(typed.params.payload, {scope: "all", q: "hello wo"});
    await tick(20);
    assert.equal(ws.count("view"), 2, "debounced into one");
  });

  test("the reply's version without a patch waits for pushes, then resyncs", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    await mounted(ws, doc);
    els[0].add(el("button", {"lg-click": "inc"}));
    els[0].kids[0].fire("click");
    const cmd = await ws.next("view");
    ws.reply(cmd.id, {version: 2});
    await ws.next("leave");
  });

  test("view events read the csrf token at send time; pushEvent works", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const {views} = await mounted(ws, doc);
    doc.head.kids[0].setAttribute("content", "csrf-2");
    const p = views[0].pushEvent("save", {a: 1});
    const cmd = await ws.next("view");
    assert.equal(cmd.params.csrf, "csrf-2");
    ws.reply(cmd.id, {version: 1});
    assert.deepEqual(await p, {version: 1});
    await assert.rejects(views[0].pushEvent("bad name!"), {code: "bad_request"});
  });

  test("views join again after a reconnect, with getSession", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    const sessions = [];
    const mounting = client.mountViews(doc, {getSession: async (e, name) => { sessions.push(name); return "fresh-" + sessions.length; }});
    const j = await ws.next("join");
    assert.equal(j.params.session, "sess-1", "the first join uses data-lg-session");
    ws.reply(j.id, {ref: "r1", version: 5, html: "a"});
    const [view] = await mounting;
    ws.drop(1006);
    assert.equal(view.state, "disconnected");
    assert.equal(els[0].getAttribute("data-lg-state"), "disconnected");
    await assert.rejects(view.pushEvent("x"), {code: "disconnected"});
    const ws2 = await (async () => {
      await until(() => FakeWS.sockets.length === 2 && FakeWS.sockets[1].sent.length > 0, "reconnect");
      const s = FakeWS.sockets[1];
      const c = await s.next("connect");
      s.reply(c.id, {client: "c2", user: "alice", expires: Math.floor(Date.now() / 1000) + 3600, ping: 25});
      return s;
    })();
    const rejoin = await ws2.next("join");
    assert.deepEqual(rejoin.params, {view: "counter", session: "fresh-1", csrf: "csrf-1"});
    ws2.reply(rejoin.id, {ref: "r9", version: 7, html: "abc"});
    await until(() => view.state === "joined", "rejoined");
    assert.equal(view.ref, "r9");
    assert.equal(view.version, 7);
    assert.equal(libs.sanitized.at(-1).html, "abc");
  });

  test("a patch push that overtakes its join reply is kept", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const mounting = client.mountViews(doc);
    const j = await ws.next("join");
    ws.receive({patch: {ref: "r1", version: 2, start: 1, end: 1, insert: "b"}});
    ws.reply(j.id, {ref: "r1", version: 1, html: "a"});
    const [view] = await mounting;
    assert.equal(view.version, 2);
    assert.equal(libs.sanitized.at(-1).html, "ab");
  });

  test("a refused join rejects mountViews and unmounts the view", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page();
    const mounting = client.mountViews(doc);
    const j = await ws.next("join");
    ws.replyError(j.id, "forbidden");
    await assert.rejects(mounting, {code: "forbidden"});
    assert.equal(els[0].getAttribute("data-lg-state"), "error");
    assert.deepEqual(client.views, []);
    assert.equal(els[0].listeners.get("click")?.size ?? 0, 0);
  });

  test("malformed join results are refused", async () => {
    newClient();
    const ws = await connected(client);
    const {doc} = page();
    const mounting = client.mountViews(doc);
    const j = await ws.next("join");
    ws.reply(j.id, {ref: {}, version: "1", html: 5});
    await assert.rejects(mounting, {code: "protocol"});
    assert.equal(libs.morphs.length, 0);
  });

  test("view_closed and a limit_exceeded answer stop the view", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page({views: [["a", "s1"], ["b", "s2"]]});
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: ""}, {ref: "r2", version: 1, html: ""}]);
    ws.receive({view_closed: {ref: "r1", code: "limit_exceeded"}});
    assert.equal(views[0].state, "error");
    assert.equal(els[0].getAttribute("data-lg-state"), "error");
    assert.deepEqual(els[0].events.at(-1).detail, {code: "limit_exceeded"});
    assert.ok(errors.some((e) => e.code === "limit_exceeded" && e.view === "a"));
    ws.receive({patch: {ref: "r1", version: 2, start: 0, end: 0, insert: "x"}});
    assert.equal(views[0].version, 1, "no patch after view_closed");
    const p = views[1].pushEvent("grow");
    const cmd = await ws.next("view");
    ws.replyError(cmd.id, "too_large");
    await assert.rejects(p, {code: "too_large"});
    assert.equal(views[1].state, "error");
    assert.deepEqual(client.views, []);
    await tick(10);
    assert.equal(ws.count("join"), 2, "not joined again by itself");
  });

  test("names must match the protocol's view and event names", async () => {
    newClient();
    const ws = await connected(client);
    for (const bad of ["Counter", "1x", "a-b", "x".repeat(65)]) {
      const {doc} = page({views: [[bad, "s"]]});
      await assert.rejects(client.mountViews(doc), {code: "bad_request"}, bad);
    }
    const {doc, els} = page();
    const {views} = await mounted(ws, doc);
    for (const bad of ["Inc", "in c", "drop-tables", "", "x".repeat(65)]) {
      await assert.rejects(views[0].pushEvent(bad), {code: "bad_request"}, bad);
    }
    els[0].add(el("button", {"lg-click": "Bad Name"}));
    els[0].kids[0].fire("click");
    await tick(10);
    assert.equal(ws.count("view"), 0);
    assert.ok(errors.some((e) => e.code === "bad_request"));
  });

  test("leave sends leave and unbinds; close marks views closed", async () => {
    newClient();
    const ws = await connected(client);
    const {doc, els} = page({views: [["a", "s1"], ["b", "s2"]]});
    const {views} = await mounted(ws, doc, [{ref: "r1", version: 1, html: ""}, {ref: "r2", version: 1, html: ""}]);
    const leaving = views[0].leave();
    const l = await ws.next("leave");
    assert.deepEqual(l.params, {ref: "r1"});
    ws.reply(l.id, {});
    await leaving;
    assert.equal(views[0].state, "left");
    assert.equal(els[0].listeners.get("click").size, 0);
    assert.equal(client.views.length, 1);
    client.close();
    assert.equal(views[1].state, "closed");
    assert.equal(els[1].getAttribute("data-lg-state"), "closed");
  });
});

describe("live operations", () => {
  function widget(attrs = {}) {
    const doc = new FakeDocument();
    const c = el("section", attrs,
      el("p", {"data-lg-op-part": "status"}),
      el("ul", {"data-lg-op-part": "log"}),
      el("progress", {"data-lg-op-part": "percent"}),
      el("div", {"data-lg-op-part": "error", hidden: ""}),
      el("div", {"data-lg-op-part": "result", hidden: ""}),
      el("div", {}, el("div", {id: "details"})),
    );
    doc.body.add(c);
    const part = (name) => c.querySelector(`[data-lg-op-part="${name}"]`);
    return {c, part};
  }

  async function watching(ws, container, opts) {
    const p = client.watchOperation("0b7e9c1a-3f", container, opts);
    const s = await ws.next("subscribe");
    assert.deepEqual(s.params, {channel: "op:0b7e9c1a-3f"});
    ws.reply(s.id, {offset: 0, epoch: "e1"});
    return p;
  }

  let offset;
  const report = (ws, data) => ws.receive({push: {channel: "op:0b7e9c1a-3f", offset: ++offset, epoch: "e1", data: {op: "0b7e9c1a-3f", ...data}}});
  beforeEach(() => { offset = 0; });

  test("renders status, log, percent, error, result and swap", async () => {
    newClient({maxLogLines: 2});
    const ws = await connected(client);
    const {c, part} = widget();
    const states = [];
    const watch = await watching(ws, c, {onState: (s) => states.push(s)});
    report(ws, {type: "status", text: "<img src=x onerror=alert(1)>", state: "running", seq: 1});
    assert.equal(part("status").textContent, "<img src=x onerror=alert(1)>", "text is text");
    assert.equal(part("status").kids.length, 0);
    report(ws, {type: "status", html: "&lt;i&gt;", text: "<i>", seq: 2});
    assert.equal(part("status").textContent, "<i>", "text wins over its escaped copy");
    assert.equal(libs.sanitized.length, 0);
    report(ws, {type: "status", html: "<b>copying</b>", seq: 2.5});
    report(ws, {type: "status", html: "<b>copying</b>", seq: 3});
    assert.ok(part("status").kids[0] instanceof Fragment, "html goes through the sanitiser");
    assert.equal(part("status").kids[0].html, "<b>copying</b>");
    for (let i = 1; i <= 3; i++) report(ws, {type: "log", text: `line ${i}`, seq: 3 + i});
    assert.deepEqual(part("log").kids.map((k) => [k.localName, k.textContent]), [["li", "line 2"], ["li", "line 3"]]);
    report(ws, {type: "percent", percent: 42.5, seq: 7});
    assert.equal(part("percent").value, 42.5);
    assert.equal(part("percent").max, 100);
    report(ws, {type: "percent", percent: 250, seq: 8});
    assert.equal(part("percent").value, 100);
    report(ws, {type: "percent", percent: "50", seq: 9});
    assert.equal(part("percent").value, 100, "a non-number is ignored");
    report(ws, {type: "swap", target: "details", html: "<i>x</i>", seq: 10});
    assert.equal(libs.morphs.at(-1).target.id, "details");
    assert.equal(libs.morphs.at(-1).html, "<i>x</i>");
    report(ws, {type: "swap", target: "nope", html: "<i>y</i>", seq: 11});
    assert.equal(libs.morphs.length, 1);
    report(ws, {type: "result", html: "<a href=/r>done</a>", state: "done", seq: 12});
    assert.equal(part("result").hidden, false);
    assert.equal(part("result").kids[0].html, "<a href=/r>done</a>");
    assert.equal(part("error").hidden, true);
    assert.deepEqual(states, ["running", "done"]);
    assert.equal(c.getAttribute("data-lg-op-state"), "done");
    assert.equal(watch.state, "done");
    assert.equal(errors.length, 0, errors.map(String).join());
  });

  test("skips old seqs, other operations, unknown types and bad states", async () => {
    newClient();
    const ws = await connected(client);
    const {c, part} = widget({"data-lg-op-seq": "5", "data-lg-op-state": "running"});
    const states = [];
    const watch = await watching(ws, c, {onState: (s) => states.push(s)});
    assert.equal(watch.state, "running");
    report(ws, {type: "status", text: "old", seq: 5});
    report(ws, {type: "status", text: "other", seq: 9, op: "someone-else"});
    report(ws, {type: "sparkle", text: "?", seq: 6});
    report(ws, {type: "state", state: "exploded", seq: 7});
    report(ws, {type: "state", state: "running", seq: 8});
    assert.equal(part("status").textContent, "");
    assert.deepEqual(states, []);
    report(ws, {type: "error", text: "disk full", state: "failed", seq: 10});
    assert.equal(part("error").textContent, "disk full");
    assert.equal(part("error").hidden, false);
    assert.deepEqual(states, ["failed"]);
  });

  test("stop unsubscribes; invalid ids are refused", async () => {
    newClient();
    const ws = await connected(client);
    const {c, part} = widget();
    const watch = await watching(ws, c);
    const stopping = watch.stop();
    const u = await ws.next("unsubscribe");
    assert.deepEqual(u.params, {channel: "op:0b7e9c1a-3f"});
    ws.reply(u.id, {});
    await stopping;
    report(ws, {type: "status", text: "late", seq: 1});
    assert.equal(part("status").textContent, "");
    for (const bad of ["", "a:b", "../x", "x y", "room:lobby", 5, "x".repeat(101)]) {
      await assert.rejects(client.watchOperation(bad, c), TypeError, String(bad));
    }
  });
});

describe("debug logging", () => {
  test("goes through sanitizeForLog with a constant format", async () => {
    const lines = [];
    const orig = console.debug;
    console.debug = (...args) => lines.push(args);
    try {
      newClient({debug: true});
      const ws = await connected(client);
      ws.receive({push: {channel: "x\u001b[2J\n%c evil\u202e", offset: 1, epoch: "e"}});
      client.close();
    } finally {
      console.debug = orig;
    }
    assert.ok(lines.length > 0);
    for (const args of lines) {
      assert.equal(args.length, 2);
      assert.equal(args[0], "%s");
      assert.doesNotMatch(args[1], /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      assert.doesNotMatch(args[1], /eyJ|"token":"token"/, "tokens are redacted");
    }
    assert.ok(lines.some(([, l]) => l.includes("[redacted]")));
  });
});
