// livegate.js: the browser client for livegate wire protocol v1.
//
// An ES module without a build step. The exact contract it implements is
// docs/protocol.md; in short:
//
//   import {Client} from "/livegate.js";
//   const client = new Client("wss://example.com/ws", {
//     getToken: async () => (await (await fetch("/token", {method: "POST"})).json()).token,
//   });
//   client.on("state", (state) => console.log(state));
//   await client.connect();
//   await client.subscribe("room:lobby", (data, info) => show(data), () => reload());
//   const result = await client.call("say", {room: "lobby", text: "hi"});
//
//   await client.mountViews();                                  // live views
//   await client.watchOperation(opId, document.querySelector("#task")); // live operations
//
// The client fetches a fresh token for every connection attempt (tokens are
// usually single-use), refreshes the connection's token about 30 s before it
// expires, reconnects with jittered exponential back-off following the
// server's close-code advice, resubscribes with the last seen stream
// position so that no message is lost or delivered twice, and paces its own
// commands under the server's default rate limit.
//
// Markup: the core client (connect, subscribe, call, publish) never turns
// server data into markup; it hands parsed JSON values to the application's
// callbacks. Live views and live-operation widgets do insert server-rendered
// HTML, and only ever through DOMPurify (DOM fragments, never a string sink)
// and idiomorph. Those two libraries are loaded with a dynamic import() from
// ./vendor/ next to this file the first time mountViews or watchOperation
// runs (web.Handler() serves them), so importing this module touches no
// browser global and pages that only use the core client need nothing else.
//
// Server data is merged into objects only through safeMerge (no __proto__,
// constructor or prototype keys), and every console line goes through
// sanitizeForLog.

/** The WebSocket subprotocol of wire protocol v1. */
export const SUBPROTOCOL = "livegate.v1";

/** Connection states reported through on("state", fn). */
export const State = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  DISCONNECTED: "disconnected",
  CLOSED: "closed",
});

/**
 * The error type of every rejected promise and "error" event of a Client.
 * code is a protocol error code ("bad_request", "forbidden", "not_available",
 * "rate_limited", ...) or one of the client's own codes: "disconnected"
 * (the socket closed before the reply), "closed" (the client is closed),
 * "timeout", "too_large" (refused locally, over the inbound frame limit),
 * "token" (getToken failed), "protocol" (the server broke the protocol),
 * "csrf" (no <meta name="csrf-token"> for a live view) and "dependency"
 * (DOMPurify or idiomorph could not be loaded, or there is no DOM).
 */
/**
 * Splits a message of a batching connection into its frames: they are
 * separated by "\n" (docs/protocol.md, "Batched messages"); empty pieces
 * are skipped.
 * @param {string} data
 * @returns {string[]}
 */
export function splitFrames(data) {
  if (data.indexOf("\n") < 0) return data === "" ? [] : [data];
  return data.split("\n").filter((f) => f !== "");
}

export class LivegateError extends Error {
  constructor(code, message, detail) {
    super(message || code);
    this.name = "LivegateError";
    this.code = code;
    if (detail !== undefined) this.detail = detail;
  }
}

/**
 * What a client does after the socket closed with code: "reconnect" (with
 * jittered back-off), "new_token" (fetch a fresh token, then reconnect) or
 * "stop". It mirrors protocol.AdviceFor on the server.
 */
export function adviceFor(code) {
  switch (code) {
    case 4401: // unauthorized
    case 4409: // token expired
      return "new_token";
    case 1000: // normal closure
    case 1009: // frame too big
    case 4400: // protocol violation
    case 4403: // revoked or forbidden
      return "stop";
    default:
      return "reconnect";
  }
}

const OPEN = 1; // WebSocket.OPEN

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isOffset = (v) => Number.isSafeInteger(v) && v >= 0;
const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const MAX_TIMER = 0x7fffffff;
const encoder = new TextEncoder();

function deferred() {
  const d = {settled: false};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = (v) => { if (!d.settled) { d.settled = true; resolve(v); } };
    d.reject = (e) => { if (!d.settled) { d.settled = true; reject(e); } };
  });
  return d;
}

function redact(params) {
  if (!isObject(params) || !hasOwn(params, "token")) return params;
  return {...params, token: "[redacted]"};
}

const errorText = (err) => (err && typeof err.message === "string" ? err.message : String(err));
const asError = (err) => (err instanceof Error ? err : new Error(sanitizeForLog(err)));

// ---- safe merging of server data ----

// Keys that safeMerge never copies: writing them can reach and change
// Object.prototype (prototype pollution) or a constructor's prototype.
const BLOCKED_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const MAX_MERGE_DEPTH = 100;

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// Defines rather than assigns: no setter (own or inherited) of target runs.
function defineKey(target, key, value) {
  Object.defineProperty(target, key, {value, writable: true, enumerable: true, configurable: true});
}

function mergeInto(target, source, depth) {
  if (depth > MAX_MERGE_DEPTH) throw new RangeError("livegate: safeMerge: nesting too deep");
  for (const key of Object.keys(source)) {
    if (BLOCKED_KEYS.has(key)) continue;
    const value = source[key];
    let next = value;
    if (isPlainObject(value)) {
      const existing = hasOwn(target, key) ? target[key] : undefined;
      next = isPlainObject(existing) ? existing : Object.create(null);
      mergeInto(next, value, depth + 1);
    } else if (Array.isArray(value)) {
      next = cloneArray(value, depth + 1);
    }
    defineKey(target, key, next);
  }
  return target;
}

function cloneArray(array, depth) {
  if (depth > MAX_MERGE_DEPTH) throw new RangeError("livegate: safeMerge: nesting too deep");
  const out = new Array(array.length);
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    if (isPlainObject(v)) out[i] = mergeInto(Object.create(null), v, depth + 1);
    else if (Array.isArray(v)) out[i] = cloneArray(v, depth + 1);
    else out[i] = v;
  }
  return out;
}

/**
 * Copies the own enumerable string keys of source into target, except
 * "__proto__", "constructor" and "prototype" (at every level), and returns
 * target. Plain objects are merged recursively: into target's own plain
 * object under the same key when there is one, otherwise into a new object
 * made with Object.create(null); arrays are copied (their plain objects
 * likewise). Keys are defined, not assigned, so no setter runs. Use it for
 * every merge of data from the server or the page: it cannot change
 * Object.prototype however the JSON was crafted. A source that is not an
 * object copies nothing; nesting deeper than 100 levels throws a RangeError.
 */
export function safeMerge(target, source) {
  if (target === null || (typeof target !== "object" && typeof target !== "function")) {
    throw new TypeError("livegate: safeMerge target must be an object");
  }
  if (source === null || typeof source !== "object") return target;
  if (Array.isArray(source)) {
    for (let i = 0; i < source.length; i++) {
      mergeInto(target, {[i]: source[i]}, 0);
    }
    return target;
  }
  return mergeInto(target, source, 0);
}

// ---- safe console output ----

// ANSI/VT escape sequences: CSI (ESC [ or the C1 byte 0x9b), OSC (ESC ],
// ended by BEL or ST), DCS/SOS/PM/APC strings, and two-byte escapes.
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\u001b\[[0-?]*[ -/]*[@-~]?|\u009b[0-?]*[ -/]*[@-~]?|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[PX^_][^\u001b]*(?:\u001b\\)?|\u001b[ -~]?/g;
// Line breaks and other whitespace controls become a space.
// eslint-disable-next-line no-control-regex
const BREAK_RE = /[\t\n\v\f\r\u0085\u2028\u2029]+/g;
// Remaining C0 and C1 controls, DEL, and bidirectional marks, embeddings,
// overrides and isolates (Trojan Source: text that displays in another
// order than it is stored).
// eslint-disable-next-line no-control-regex
const STRIP_RE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// A surrogate pair (kept) or a lone surrogate (replaced).
const SURROGATE_RE = /[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g;

function logText(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) {
    const code = typeof value.code === "string" ? `(${value.code})` : "";
    return `${value.name}${code}: ${value.message}`;
  }
  if (value === undefined || typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value === null) {
    return String(value);
  }
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") return "[function]";
  try {
    const json = JSON.stringify(value);
    if (typeof json === "string") return json;
  } catch { /* a cycle or a BigInt */ }
  return Object.prototype.toString.call(value);
}

/**
 * Returns value as a single line that is safe to print on a console or in a
 * log: strings as they are, errors as "Name(code): message", other values
 * as JSON; ANSI escape sequences, control characters and bidirectional
 * overrides removed, line breaks turned into spaces, lone surrogates
 * replaced with U+FFFD, and the result cut to maxLength code points (200
 * by default) with "…" appended when it was longer.
 */
export function sanitizeForLog(value, maxLength = 200) {
  const max = Number.isSafeInteger(maxLength) && maxLength > 0 ? maxLength : 200;
  let s = logText(value)
    .replace(ANSI_RE, "")
    .replace(BREAK_RE, " ")
    .replace(STRIP_RE, "")
    .replace(SURROGATE_RE, (m) => (m.length === 2 ? m : "\ufffd"));
  let count = 0;
  let cut = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++; // a pair is one code point
    count++;
    if (count === max) { cut = i + 1; break; }
  }
  if (cut !== -1 && cut < s.length) s = s.slice(0, cut) + "\u2026";
  return s;
}

// ---- live-view patches (pure) ----

const isHighSurrogate = (c) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c) => c >= 0xdc00 && c <= 0xdfff;
const splitsPair = (s, i) => i > 0 && i < s.length && isHighSurrogate(s.charCodeAt(i - 1)) && isLowSurrogate(s.charCodeAt(i));

/**
 * Applies one live-view patch to html, the view's previous HTML string: the
 * UTF-16 code units [patch.start, patch.end) are replaced with
 * patch.insert. Throws a LivegateError "protocol" when the patch is
 * malformed: offsets that are not integers, start > end, end past the end
 * of html, an insert that is not a string, or an offset that falls between
 * the two halves of a surrogate pair (an emoji, for instance), which means
 * the server counted in bytes or code points and the copies have diverged.
 */
export function applyPatch(html, patch) {
  if (typeof html !== "string") throw new TypeError("livegate: html must be a string");
  if (!isObject(patch)) throw new LivegateError("protocol", "malformed patch");
  const {start, end, insert} = patch;
  if (!isOffset(start) || !isOffset(end) || typeof insert !== "string") {
    throw new LivegateError("protocol", "malformed patch");
  }
  if (start > end || end > html.length) throw new LivegateError("protocol", "patch out of range");
  if (splitsPair(html, start) || splitsPair(html, end)) {
    throw new LivegateError("protocol", "patch splits a surrogate pair");
  }
  return html.slice(0, start) + insert + html.slice(end);
}

/**
 * Compares a patch's version with the version a view is at: "apply" when
 * it is the next one (current + 1), "duplicate" when it is not newer
 * (already applied), "gap" when versions in between are missing.
 */
export function checkVersion(current, next) {
  if (!Number.isSafeInteger(current) || !Number.isSafeInteger(next)) {
    throw new LivegateError("protocol", "malformed version");
  }
  if (next <= current) return "duplicate";
  return next === current + 1 ? "apply" : "gap";
}

/**
 * The HTML string and version of one live view, and the patches that
 * arrived ahead of a missing one. Replies and pushes are not ordered with
 * respect to each other (protocol §3.4), so a patch may overtake the one
 * before it; it is held (at most maxPending of them) until the gap fills.
 */
export class PatchQueue {
  #html;
  #version;
  #pending = new Map(); // version -> patch
  #max;

  constructor(html, version, {maxPending = 32} = {}) {
    if (typeof html !== "string") throw new TypeError("livegate: html must be a string");
    if (!isOffset(version)) throw new TypeError("livegate: version must be a non-negative integer");
    this.#html = html;
    this.#version = version;
    this.#max = Number.isSafeInteger(maxPending) && maxPending >= 0 ? maxPending : 32;
  }

  /** The current HTML string (the server's, before sanitising). */
  get html() { return this.#html; }
  /** The version of html. */
  get version() { return this.#version; }
  /** How many patches wait for a missing earlier one. */
  get pending() { return this.#pending.size; }
  /** The highest version seen, applied or waiting. */
  get highest() {
    let v = this.#version;
    for (const k of this.#pending.keys()) if (k > v) v = k;
    return v;
  }

  /**
   * Offers a patch {version, start, end, insert}. Returns "applied" (it and
   * every waiting patch it unblocked changed html), "duplicate" (an old
   * version: ignored), "buffered" (a version is missing before it) or
   * "gap" (too many are waiting: the caller must resync). Throws a
   * LivegateError "protocol" for a malformed patch; html and version then
   * stay at the last good patch.
   */
  offer(patch) {
    if (!isObject(patch)) throw new LivegateError("protocol", "malformed patch");
    const step = checkVersion(this.#version, patch.version);
    if (step === "duplicate") return "duplicate";
    if (step === "gap") {
      if (!this.#pending.has(patch.version)) {
        if (this.#pending.size >= this.#max) return "gap";
        this.#pending.set(patch.version, patch);
      }
      return "buffered";
    }
    this.#html = applyPatch(this.#html, patch);
    this.#version = patch.version;
    for (;;) {
      const next = this.#pending.get(this.#version + 1);
      if (!next) break;
      this.#pending.delete(this.#version + 1);
      this.#html = applyPatch(this.#html, next);
      this.#version++;
    }
    return "applied";
  }
}

// ---- DOM helpers for live views and operations (called only in a browser) ----

const LG_ATTR_RE = /^lg-[a-z0-9][a-z0-9_.:-]*$/;
const HANDLER_ATTR_RE = /^on/i;
const FORBID_TAGS = ["script", "style", "iframe", "frame", "frameset", "object", "embed", "base", "link", "meta", "noscript"];
const BLOCKED_TAGS = new Set(FORBID_TAGS);
const FORM_CONTROLS = new Set(["input", "select", "textarea", "button", "output"]);
const FIELD_NAMES = new Set(["name", "title", "action", "method", "target", "lang", "dir", "hidden", "autocomplete", "accept", "rel", "role"]);
const OP_ID_RE = /^[A-Za-z0-9_-]{1,100}$/;
const OP_STATES = new Set(["running", "done", "failed", "cancelled"]);
const OP_PARTS = new Set(["status", "log", "percent", "error", "result"]);
// View and view-event names (docs/protocol.md §13).
const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

function readCsrf(el) {
  const doc = (el && el.ownerDocument) || globalThis.document;
  const meta = doc && typeof doc.querySelector === "function" ? doc.querySelector('meta[name="csrf-token"]') : null;
  const token = meta ? meta.getAttribute("content") : null;
  return typeof token === "string" && token !== "" ? token : null;
}

// lg-value-* attributes of el as a payload object.
function attrValues(el) {
  const out = Object.create(null);
  for (const attr of Array.from(el.attributes || [])) {
    if (!attr.name.startsWith("lg-value-")) continue;
    const key = attr.name.slice("lg-value-".length);
    if (key !== "" && !BLOCKED_KEYS.has(key)) out[key] = attr.value;
  }
  return out;
}

// The form's fields as a plain object (Object.create(null)); a name that
// occurs more than once gives an array; files are not sent.
function formValues(form, submitter) {
  let data;
  try {
    data = submitter ? new FormData(form, submitter) : new FormData(form);
  } catch {
    data = new FormData(form); // a submitter that is not a submit button
  }
  const out = Object.create(null);
  for (const [key, value] of data) {
    if (typeof value !== "string" || BLOCKED_KEYS.has(key)) continue;
    if (!hasOwn(out, key)) out[key] = value;
    else if (Array.isArray(out[key])) out[key].push(value);
    else out[key] = [out[key], value];
  }
  return out;
}

// The value a single control contributes to an lg-change payload.
function controlValue(el) {
  if (el.type === "checkbox") return el.checked ? (el.value || "on") : "";
  if (el.localName === "select" && el.multiple) return Array.from(el.selectedOptions || [], (o) => o.value);
  return typeof el.value === "string" ? el.value : "";
}

function findPart(container, name) {
  return OP_PARTS.has(name) ? container.querySelector(`[data-lg-op-part="${name}"]`) : null;
}

function findById(container, id) {
  if (typeof id !== "string" || id === "") return null;
  for (const el of container.querySelectorAll("[id]")) if (el.id === id) return el;
  return null;
}

function dispatch(el, type, detail) {
  if (typeof globalThis.CustomEvent !== "function" || !el || typeof el.dispatchEvent !== "function") return;
  try {
    el.dispatchEvent(new globalThis.CustomEvent(type, {detail, bubbles: true}));
  } catch { /* a listener's error is the page's business */ }
}

/**
 * A live view mounted by Client.mountViews. Its element's children follow
 * the server's rendering; lg-click, lg-submit and lg-change inside it send
 * view events.
 */
export class LiveView {
  #ctl;

  /** @internal Views are made by Client.mountViews. */
  constructor(ctl) {
    if (!isObject(ctl) || typeof ctl.send !== "function") throw new TypeError("livegate: use client.mountViews()");
    this.#ctl = ctl;
  }

  /** The element with data-lg-view. */
  get element() { return this.#ctl.el; }
  /** The view's name (the data-lg-view attribute). */
  get name() { return this.#ctl.name; }
  /** The server's reference of the joined view, or null while not joined. */
  get ref() { return this.#ctl.ref; }
  /** The version of the rendered HTML, or null before the first join. */
  get version() { return this.#ctl.queue ? this.#ctl.queue.version : null; }
  /** "joining", "joined", "disconnected", "error", "left" or "closed". */
  get state() { return this.#ctl.state; }

  /** Sends the view event name with payload (CSRF token added); resolves with the result. */
  pushEvent(name, payload = {}) { return this.#ctl.send(name, payload, false); }

  /** Leaves the view: events stop, the element keeps its last content. */
  leave() { return this.#ctl.leave(); }
}

export class Client {
  #url;
  #getToken;
  #debug;
  #WS;
  #opts;

  #state = State.CLOSED;
  #ws = null;
  #inbox = []; // frames of batched messages waiting for #drain: {gen, frame}
  #draining = false;
  #gen = 0; // bumped by every open attempt and by close(); stale async work checks it
  #nextId = 1;
  #pending = new Map(); // id -> command waiting for its reply
  #queue = []; // commands accepted for the current socket, waiting for a rate token
  #waiting = []; // commands issued while not connected
  #subs = new Map(); // channel -> subscription
  #listeners = {state: new Set(), error: new Set()};
  #connectDeferred = null;
  #connectResult = null;
  #connectedAt = 0;
  #attempt = 0;
  #tokens = 0;
  #lastRefill = 0;
  #timers = {reconnect: 0, connect: 0, refresh: 0, pump: 0};

  #dom = null; // promise of {sanitize, morph} once DOMPurify and idiomorph are loaded
  #domReady = null; // what #dom resolved with
  #views = new Map(); // element -> live view record
  #viewRefs = new Map(); // ref -> live view record (joined views of this connection)
  #orphans = []; // patch pushes whose ref has no view yet (a join reply still on its way)
  #watches = new Set(); // live-operation watches

  /**
   * @param {string} url the gateway's WebSocket URL, e.g. "wss://host/ws".
   *   Never put a token in it: the server ignores query-string tokens.
   * @param {object} options
   * @param {() => Promise<string>} options.getToken returns a fresh connect
   *   token; called before every connection attempt and every refresh. If it
   *   rejects with an error whose `fatal` property is true, the client stops.
   * @param {boolean} [options.debug] log frames (tokens redacted, every line
   *   through sanitizeForLog) to the console.
   * @param {number} [options.callTimeout=30000] ms before call/publish/unsubscribe reject with "timeout".
   * @param {number} [options.connectTimeout=10000] ms from opening the socket to the connect reply.
   * @param {number} [options.backoffMin=500] first reconnect delay cap in ms.
   * @param {number} [options.backoffMax=30000] largest reconnect delay in ms.
   * @param {number} [options.rate=50] commands per second the client sends at most.
   * @param {number} [options.burst=10] commands the client may send at once.
   * @param {number} [options.maxFrameBytes=65536] largest frame the client sends.
   * @param {number} [options.patchGapTimeout=1000] ms a live view waits for a
   *   missing patch before it resyncs (leave and join again).
   * @param {number} [options.maxLogLines=1000] lines an operation's log part keeps.
   * @param {string|URL} [options.vendorBase] where DOMPurify and idiomorph are
   *   loaded from (purify.es.mjs, idiomorph.esm.js); default ./vendor/ next
   *   to this module.
   * @param {object} [options.DOMPurify] a DOMPurify export to use instead of loading one.
   * @param {object} [options.Idiomorph] an idiomorph export to use instead of loading one.
   * @param {Function} [options.WebSocket] WebSocket implementation (tests).
   */
  constructor(url, options = {}) {
    if (typeof url !== "string" || url === "") throw new TypeError("livegate: url must be a non-empty string");
    if (!isObject(options) || typeof options.getToken !== "function") {
      throw new TypeError("livegate: options.getToken must be a function returning a token");
    }
    this.#url = url;
    this.#getToken = options.getToken;
    this.#debug = Boolean(options.debug);
    this.#WS = options.WebSocket || globalThis.WebSocket;
    const num = (v, d) => (Number.isFinite(v) && v > 0 ? v : d);
    this.#opts = {
      callTimeout: num(options.callTimeout, 30000),
      connectTimeout: num(options.connectTimeout, 10000),
      backoffMin: num(options.backoffMin, 500),
      backoffMax: num(options.backoffMax, 30000),
      rate: num(options.rate, 50),
      burst: Math.max(1, num(options.burst, 10)),
      maxFrameBytes: num(options.maxFrameBytes, 65536),
      patchGapTimeout: Number.isFinite(options.patchGapTimeout) && options.patchGapTimeout >= 0 ? options.patchGapTimeout : 1000,
      maxLogLines: Math.floor(num(options.maxLogLines, 1000)),
      vendorBase: options.vendorBase,
      DOMPurify: options.DOMPurify,
      Idiomorph: options.Idiomorph,
    };
  }

  /** The current state: "connecting", "connected", "disconnected" or "closed". */
  get state() { return this.#state; }

  /** The live views currently mounted (every state but "left" and "error"). */
  get views() { return Array.from(this.#views.values(), (v) => v.handle); }

  /**
   * Registers fn for "state" (fn(state, info) where info is {code, reason}
   * after a close) or "error" (fn(LivegateError)). Returns a function that
   * removes the listener.
   */
  on(event, fn) {
    const set = this.#listeners[event];
    if (!set || !hasOwn(this.#listeners, event)) throw new TypeError(`livegate: unknown event ${JSON.stringify(sanitizeForLog(event, 64))}`);
    if (typeof fn !== "function") throw new TypeError("livegate: listener must be a function");
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Connects and resolves with the connect result {client, user, expires,
   * ping} once the connection is authenticated. Transient failures are
   * retried with back-off while the promise stays pending; it rejects when
   * the client stops (close(), a fatal getToken error or a close code whose
   * advice is "stop").
   */
  connect() {
    if (this.#state === State.CONNECTED) return Promise.resolve(this.#connectResult);
    if (!this.#connectDeferred) this.#connectDeferred = deferred();
    const d = this.#connectDeferred;
    if (this.#state === State.CLOSED) {
      this.#attempt = 0;
      this.#open();
    }
    return d.promise;
  }

  /**
   * Subscribes to channel. onPush(data, {channel, offset, epoch}) receives
   * every publication once, in order, including those recovered after a
   * reconnect. The third argument is either onReset(result), called when a
   * resubscription reports recovered: false (messages were missed: reload
   * the application's state), or an object {onReset, getToken} where
   * getToken(channel) returns a subscription token for namespaces that need
   * one, and onJoinLeave({join, conn, user}) is called when another
   * connection joins (join true) or leaves the channel (namespaces with
   * join/leave notices). Resolves with the first subscribe result
   * {offset, epoch}. When the server asks for it (a "resubscribe" notice),
   * the client resubscribes from its last position by itself.
   */
  subscribe(channel, onPush, third) {
    if (typeof channel !== "string" || channel === "") return Promise.reject(new TypeError("livegate: channel must be a non-empty string"));
    if (typeof onPush !== "function") return Promise.reject(new TypeError("livegate: onPush must be a function"));
    let onReset = null;
    let getToken = null;
    let onJoinLeave = null;
    if (typeof third === "function") {
      onReset = third;
    } else if (isObject(third)) {
      if (typeof third.onReset === "function") onReset = third.onReset;
      if (typeof third.getToken === "function") getToken = third.getToken;
      if (typeof third.onJoinLeave === "function") onJoinLeave = third.onJoinLeave;
    }
    if (this.#state === State.CLOSED) return Promise.reject(new LivegateError("closed", "client is closed"));
    if (this.#subs.has(channel)) return Promise.reject(new LivegateError("bad_request", "already subscribed"));
    const sub = {channel, onPush, onReset, getToken, onJoinLeave, offset: null, epoch: null, status: "idle", retries: 0, first: deferred()};
    this.#subs.set(channel, sub);
    if (this.#state === State.CONNECTED) this.#sendSubscribe(sub);
    return sub.first.promise;
  }

  /**
   * Lists the connections present in channel, which this client must be
   * subscribed to in a namespace that records presence (otherwise it
   * rejects with code "forbidden"). Resolves with [{conn, user}, ...].
   */
  presence(channel) {
    if (typeof channel !== "string" || channel === "") return Promise.reject(new TypeError("livegate: channel must be a non-empty string"));
    return this.#command("presence", {channel}, {timeout: true, wait: true}).then((result) => {
      if (!isObject(result) || !Array.isArray(result.clients)) throw new LivegateError("protocol", "malformed presence result");
      return result.clients.filter((c) => isObject(c) && typeof c.conn === "string" && typeof c.user === "string")
        .map((c) => ({conn: c.conn, user: c.user}));
    });
  }

  /** Unsubscribes from channel; resolves with {} once the server confirmed. */
  unsubscribe(channel) {
    const sub = this.#subs.get(channel);
    if (!sub) return Promise.reject(new LivegateError("bad_request", "not subscribed"));
    this.#subs.delete(channel);
    const wasSent = sub.status === "pending" || sub.status === "active" || sub.status === "resync";
    sub.status = "gone";
    sub.first.reject(new LivegateError("unsubscribed", "unsubscribed"));
    if (!wasSent || this.#state !== State.CONNECTED) return Promise.resolve({});
    const attempt = (n) => this.#command("unsubscribe", {channel}, {timeout: true, wait: false}).catch((err) => {
      // The outcome the caller wants holds in every case but a rate limit.
      if (err.code === "rate_limited" && n < 3 && !this.#subs.has(channel)) {
        return new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000)).then(() => attempt(n + 1));
      }
      if (err.code === "bad_request" || err.code === "disconnected" || err.code === "closed") return {};
      throw err;
    });
    return attempt(0);
  }

  /**
   * Calls the event handler name with payload and resolves with its result.
   * Rejects with a LivegateError whose code is the server's error code
   * ("not_available", "bad_request", "rate_limited", "internal", ...).
   * Called while (re)connecting, it waits for the connection (up to
   * callTimeout); in flight when the socket closes, it rejects with
   * "disconnected" and is not resent.
   */
  call(name, payload = {}) {
    if (typeof name !== "string") return Promise.reject(new TypeError("livegate: event name must be a string"));
    return this.#command("event", {name, payload}, {timeout: true, wait: true});
  }

  /** Publishes data (any JSON value) to channel; resolves with {offset, epoch}. */
  publish(channel, data) {
    if (typeof channel !== "string") return Promise.reject(new TypeError("livegate: channel must be a string"));
    if (data === undefined) return Promise.reject(new LivegateError("bad_request", "data is required"));
    return this.#command("publish", {channel, data}, {timeout: true, wait: true});
  }

  /**
   * Refreshes the connection's token now with a fresh getToken(). It also
   * runs by itself about 30 s before the token expires. Resolves with
   * {expires}.
   */
  refresh() {
    if (this.#state !== State.CONNECTED) return Promise.reject(new LivegateError("disconnected", "not connected"));
    return this.#doRefresh(this.#gen);
  }

  /** Closes the connection for good: no reconnect; pending work rejects. */
  close() {
    this.#shutdown(null, {code: 1000, reason: "client closed"});
  }

  // ---- live views ----

  /**
   * Mounts every live view in root (a document or an element; root itself
   * counts when it has the attribute): elements with data-lg-view="name"
   * and data-lg-session="token", rendered by the server over HTTP, and
   * optionally data-lg-params='{"json": "object"}'. The page MUST have
   * <meta name="csrf-token" content="...">: without it nothing is joined and
   * the promise rejects with a LivegateError "csrf".
   *
   * View and event names match ^[a-z][a-z0-9_]{0,63}$ (docs/protocol.md
   * §13). Each view is joined (join {view, session, csrf, params?}), its
   * element's children are morphed to the sanitised HTML of the join
   * result, and then
   *   - a click on an element with lg-click="event" sends that event with
   *     the element's lg-value-* attributes as the payload;
   *   - submitting a form with lg-submit="event" sends the form's fields
   *     (and the lg-value-* attributes of the form);
   *   - a change of a control with lg-change="event" sends {name: value}
   *     (plus its lg-value-*), and of any control inside a form with
   *     lg-change, the form's fields; with lg-debounce="ms" on the element
   *     that has lg-change, typing sends too, at most once per ms.
   * Every view command carries the CSRF token. Patches from replies and
   * pushes are applied in version order; on a gap the view leaves and joins
   * again. Views join again after a reconnect. A view the server closes
   * (view_closed, or a limit_exceeded or too_large answer) stops being
   * live: state "error", an "error" event and an "lg:error" DOM event
   * (detail {code}). The element gets
   * data-lg-state="joining|joined|disconnected|error|left|closed" and an
   * "lg:update" event (detail {ref, version}) after every update.
   *
   * Resolves with the LiveView of each element once joined; rejects with the
   * first error (views that joined stay mounted).
   *
   * @param {Document|Element} [root=document]
   * @param {{getSession?: (element: Element, view: string) => string|Promise<string>}} [options]
   *   getSession returns a fresh session token for a re-join (after a
   *   reconnect or a resync) when the one in data-lg-session may have expired.
   */
  async mountViews(root = globalThis.document, options = {}) {
    if (!root || typeof root.querySelectorAll !== "function") throw new TypeError("livegate: mountViews needs a document or an element");
    if (this.#state === State.CLOSED) throw new LivegateError("closed", "client is closed");
    const getSession = isObject(options) && typeof options.getSession === "function" ? options.getSession : null;
    const elements = [];
    if (typeof root.hasAttribute === "function" && root.hasAttribute("data-lg-view")) elements.push(root);
    elements.push(...root.querySelectorAll("[data-lg-view]"));
    if (elements.length === 0) return [];
    if (readCsrf(elements[0]) === null) {
      throw new LivegateError("csrf", 'no <meta name="csrf-token">: refusing to join live views');
    }
    await this.#loadDom();
    if (this.#state === State.CLOSED) throw new LivegateError("closed", "client is closed");
    const joins = [];
    for (const el of elements) {
      const existing = this.#views.get(el);
      if (existing) {
        joins.push(existing.first.promise);
        continue;
      }
      let view;
      try {
        view = this.#newView(el, getSession);
      } catch (err) {
        joins.push(Promise.reject(err));
        continue;
      }
      this.#views.set(el, view);
      this.#bindView(view);
      this.#join(view);
      joins.push(view.first.promise);
    }
    return Promise.all(joins);
  }

  #newView(el, getSession) {
    const name = el.getAttribute("data-lg-view");
    const session = el.getAttribute("data-lg-session");
    if (typeof name !== "string" || !NAME_RE.test(name)) throw new LivegateError("bad_request", `invalid view name ${JSON.stringify(sanitizeForLog(name, 70))}`);
    if (!session && !getSession) throw new LivegateError("bad_request", `view ${sanitizeForLog(name, 64)} has no data-lg-session`);
    let params = null;
    const raw = el.getAttribute("data-lg-params");
    if (raw !== null && raw !== "") {
      let parsed;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new LivegateError("bad_request", "data-lg-params is not JSON");
      }
      if (!isObject(parsed)) throw new LivegateError("bad_request", "data-lg-params is not a JSON object");
      params = safeMerge(Object.create(null), parsed);
    }
    const view = {
      el, name, session, params, getSession,
      ref: null, queue: null, state: "joining", csrf: null,
      seq: 0, // bumped by every join attempt; stale replies check it
      retries: 0, resyncs: 0, gapTimer: 0, retryTimer: 0, expect: 0,
      first: deferred(), unbind: null, handle: null,
    };
    view.handle = new LiveView({
      get el() { return view.el; },
      get name() { return view.name; },
      get ref() { return view.ref; },
      get queue() { return view.queue; },
      get state() { return view.state; },
      send: (event, payload, keepActive) => this.#viewEvent(view, event, payload, keepActive),
      leave: () => this.#leaveView(view, true),
    });
    view.first.promise.catch(() => {}); // mountViews reports the error
    return view;
  }

  #setViewState(view, state) {
    view.state = state;
    try { view.el.setAttribute("data-lg-state", state); } catch { /* not an element */ }
  }

  async #join(view) {
    const seq = ++view.seq;
    const gen = this.#gen;
    this.#clearViewTimers(view);
    this.#setViewState(view, "joining");
    const csrf = readCsrf(view.el);
    if (csrf === null) {
      this.#failView(view, new LivegateError("csrf", 'no <meta name="csrf-token">: refusing to join'));
      return;
    }
    let session = view.session;
    if (view.getSession && (view.queue !== null || !session)) {
      try {
        session = await view.getSession(view.el, view.name);
      } catch (err) {
        if (seq !== view.seq) return;
        this.#failView(view, new LivegateError("token", "could not get a view session: " + errorText(err)));
        return;
      }
      if (seq !== view.seq || view.state !== "joining") return;
      if (typeof session !== "string" || session === "") {
        this.#failView(view, new LivegateError("token", "getSession did not return a session token"));
        return;
      }
    }
    const params = {view: view.name, session, csrf};
    if (view.params) params.params = view.params;
    let result;
    try {
      result = await this.#command("join", params, {timeout: true, wait: true});
    } catch (err) {
      if (seq !== view.seq || view.state !== "joining") return;
      if (err.code === "disconnected") {
        // Joined again once the connection is back.
        this.#setViewState(view, "disconnected");
        if (this.#state === State.CONNECTED) this.#join(view);
        return;
      }
      if ((err.code === "rate_limited" || err.code === "unavailable") && view.retries < 5) {
        view.retries++;
        view.retryTimer = setTimeout(() => {
          view.retryTimer = 0;
          if (seq === view.seq && view.state === "joining") this.#join(view);
        }, 1000 * view.retries + Math.random() * 1000);
        return;
      }
      this.#failView(view, err);
      return;
    }
    if (seq !== view.seq || view.state !== "joining") {
      // Left (or rejoined) meanwhile: the server holds a view nobody uses.
      if (isObject(result) && typeof result.ref === "string" && gen === this.#gen) {
        this.#command("leave", {ref: result.ref}, {timeout: true, wait: false}).catch(() => {});
      }
      return;
    }
    if (!isObject(result) || typeof result.ref !== "string" || result.ref === "" ||
        !isOffset(result.version) || typeof result.html !== "string") {
      this.#failView(view, new LivegateError("protocol", "malformed join result"));
      return;
    }
    view.retries = 0;
    view.csrf = csrf;
    view.ref = result.ref;
    view.queue = new PatchQueue(result.html, result.version);
    view.expect = result.version;
    this.#viewRefs.set(result.ref, view);
    this.#setViewState(view, "joined");
    this.#renderView(view, true);
    // Patches that overtook the join reply.
    const now = Date.now();
    const orphans = this.#orphans;
    this.#orphans = [];
    for (const o of orphans) {
      if (o.patch.ref === result.ref) this.#offerPatch(view, o.patch, true);
      else if (now - o.at < 5000) this.#orphans.push(o);
    }
    view.first.resolve(view.handle);
  }

  // A view that cannot be joined: it is unmounted (mountViews may try again).
  #failView(view, err) {
    this.#clearViewTimers(view);
    if (view.ref !== null) this.#viewRefs.delete(view.ref);
    view.ref = null;
    view.seq++;
    if (view.unbind) view.unbind();
    view.unbind = null;
    if (this.#views.get(view.el) === view) this.#views.delete(view.el);
    this.#setViewState(view, "error");
    err.view = view.name;
    dispatch(view.el, "lg:error", {code: err.code});
    if (view.first.settled) this.#emitError(err);
    else view.first.reject(err);
  }

  #leaveView(view, sendLeave) {
    if (view.state === "left" || view.state === "closed" || view.state === "error") return Promise.resolve({});
    const ref = view.ref;
    const joined = view.state === "joined";
    this.#clearViewTimers(view);
    if (ref !== null) this.#viewRefs.delete(ref);
    view.ref = null;
    view.seq++;
    if (view.unbind) view.unbind();
    view.unbind = null;
    if (this.#views.get(view.el) === view) this.#views.delete(view.el);
    this.#setViewState(view, "left");
    view.first.reject(new LivegateError("closed", "view left"));
    if (!sendLeave || !joined || ref === null || this.#state !== State.CONNECTED) return Promise.resolve({});
    return this.#command("leave", {ref}, {timeout: true, wait: false}).catch((err) => {
      if (err.code === "disconnected" || err.code === "closed" || err.code === "bad_request") return {};
      throw err;
    });
  }

  // Leaves and joins again to get a fresh copy of the view.
  #resync(view, why) {
    if (view.state !== "joined") return;
    if (this.#debug) this.#log("view resync", view.name, why);
    const ref = view.ref;
    this.#clearViewTimers(view);
    this.#viewRefs.delete(ref);
    view.ref = null;
    view.resyncs++;
    if (view.resyncs > 5) {
      if (this.#state === State.CONNECTED) this.#command("leave", {ref}, {timeout: true, wait: false}).catch(() => {});
      this.#failView(view, new LivegateError("protocol", "live view keeps losing patches"));
      return;
    }
    if (this.#state === State.CONNECTED) this.#command("leave", {ref}, {timeout: true, wait: false}).catch(() => {});
    this.#setViewState(view, "joining");
    const seq = ++view.seq;
    const delay = view.resyncs > 1 ? 500 * 2 ** (view.resyncs - 2) + Math.random() * 500 : 0;
    if (delay === 0) {
      this.#join(view);
      return;
    }
    view.retryTimer = setTimeout(() => {
      view.retryTimer = 0;
      if (seq === view.seq && view.state === "joining") this.#join(view);
    }, delay);
  }

  #clearViewTimers(view) {
    if (view.gapTimer) clearTimeout(view.gapTimer);
    if (view.retryTimer) clearTimeout(view.retryTimer);
    view.gapTimer = 0;
    view.retryTimer = 0;
  }

  #viewEvent(view, name, payload, keepActive) {
    if (typeof name !== "string" || !NAME_RE.test(name)) return Promise.reject(new LivegateError("bad_request", "invalid view event name"));
    if (view.state !== "joined" || view.ref === null) return Promise.reject(new LivegateError("disconnected", "view is not joined"));
    const csrf = readCsrf(view.el) || view.csrf;
    if (!csrf) return Promise.reject(new LivegateError("csrf", "no CSRF token"));
    const body = payload === undefined ? Object.create(null) : payload;
    const ref = view.ref;
    const seq = view.seq;
    return this.#command("view", {ref, name, payload: body, csrf}, {timeout: true, wait: false}).then((result) => {
      if (seq === view.seq && view.ref === ref && view.state === "joined") this.#viewResult(view, result, keepActive);
      return result;
    }, (err) => {
      // The server closed the view (its state or a patch grew too large).
      if ((err.code === "limit_exceeded" || err.code === "too_large") && seq === view.seq && view.ref === ref) {
        this.#viewClosed(view, err.code);
      }
      throw err;
    });
  }

  #viewResult(view, result, keepActive) {
    if (!isObject(result)) return;
    if (isObject(result.patch)) {
      let patch = result.patch;
      if (!hasOwn(patch, "version") && Number.isSafeInteger(result.version)) {
        patch = safeMerge(safeMerge(Object.create(null), patch), {version: result.version});
      }
      this.#offerPatch(view, patch, keepActive);
    }
    if (view.state === "joined" && Number.isSafeInteger(result.version) && result.version > view.queue.version) {
      // Patches up to result.version come as pushes.
      view.expect = Math.max(view.expect, result.version);
      this.#armGap(view);
    }
  }

  // The server closed a view on its own ({"view_closed": {ref, code}}) or
  // in answer to one of its events: it stops being live. The page keeps its
  // content; mountViews may join it again.
  #viewClosed(view, code) {
    if (view.state !== "joined") return;
    if (this.#debug) this.#log("view closed by the server", view.name, code);
    const err = new LivegateError(typeof code === "string" && code !== "" ? code : "internal", "live view closed by the server");
    view.first.resolve(view.handle);
    this.#failView(view, err);
  }

  #onPatchPush(patch) {
    const view = this.#viewRefs.get(patch.ref);
    if (!view) {
      if (typeof patch.ref === "string") {
        if (this.#orphans.length >= 64) this.#orphans.shift();
        this.#orphans.push({patch, at: Date.now()});
      }
      return;
    }
    this.#offerPatch(view, patch, true);
  }

  #offerPatch(view, patch, keepActive) {
    if (view.state !== "joined") return;
    let outcome;
    try {
      outcome = view.queue.offer(patch);
    } catch (err) {
      this.#emitError(err);
      this.#resync(view, "bad patch");
      return;
    }
    if (outcome === "duplicate") return;
    if (outcome === "gap") {
      this.#resync(view, "too many patches out of order");
      return;
    }
    if (outcome === "applied") {
      view.resyncs = 0;
      this.#renderView(view, keepActive);
    }
    if (view.state === "joined" && (view.queue.pending > 0 || view.expect > view.queue.version)) this.#armGap(view);
    else if (view.gapTimer) {
      clearTimeout(view.gapTimer);
      view.gapTimer = 0;
    }
  }

  #armGap(view) {
    if (view.gapTimer) return;
    const seq = view.seq;
    view.gapTimer = setTimeout(() => {
      view.gapTimer = 0;
      if (seq !== view.seq || view.state !== "joined") return;
      if (view.queue.pending > 0 || view.expect > view.queue.version) this.#resync(view, "version gap");
    }, this.#opts.patchGapTimeout);
  }

  // Morphs the view's children to its sanitised HTML. keepActive leaves the
  // value of the focused control alone (the user is typing in it).
  #renderView(view, keepActive) {
    const el = view.el;
    if (el.isConnected === false) {
      this.#leaveView(view, true);
      return;
    }
    const dom = this.#domReady; // loaded before any view was made
    if (!dom || view.state !== "joined") return;
    const version = view.queue.version;
    const views = this.#views;
    try {
      dom.morph(el, dom.sanitize(view.queue.html), keepActive, (node) => node !== el && views.has(node));
    } catch (err) {
      this.#emitError(new LivegateError("internal", "cannot render live view: " + errorText(err)));
      return;
    }
    dispatch(el, "lg:update", {ref: view.ref, version});
  }

  // Event delegation on the view's element.
  #bindView(view) {
    const el = view.el;
    const owns = (node) => node && typeof node.closest === "function" && node.closest("[data-lg-view]") === el;
    const send = (name, payload, keepActive) => {
      this.#viewEvent(view, name, payload, keepActive).catch((err) => {
        if (err && typeof err === "object") err.view = view.name;
        this.#emitError(asError(err));
      });
    };
    const debounce = new WeakMap();
    const onClick = (ev) => {
      const t = ev.target && typeof ev.target.closest === "function" ? ev.target.closest("[lg-click]") : null;
      if (!t || !owns(t)) return;
      ev.preventDefault();
      send(t.getAttribute("lg-click"), attrValues(t), false);
    };
    const onSubmit = (ev) => {
      const form = ev.target;
      if (!form || form.localName !== "form" || !form.hasAttribute("lg-submit") || !owns(form)) return;
      ev.preventDefault();
      const payload = safeMerge(attrValues(form), formValues(form, ev.submitter));
      send(form.getAttribute("lg-submit"), payload, false);
    };
    const changed = (ev, typing) => {
      const control = ev.target;
      if (!control || typeof control.closest !== "function" || !owns(control)) return;
      const bound = control.closest("[lg-change]");
      if (!bound || !owns(bound)) return;
      const name = bound.getAttribute("lg-change");
      const build = () => {
        if (bound.localName === "form") return safeMerge(attrValues(bound), formValues(bound));
        const payload = attrValues(bound);
        const key = bound.getAttribute("name") || "value";
        if (!BLOCKED_KEYS.has(key)) payload[key] = controlValue(bound);
        return payload;
      };
      if (!typing) {
        clearTimeout(debounce.get(bound));
        send(name, build(), true);
        return;
      }
      const ms = Number.parseInt(bound.getAttribute("lg-debounce") || "", 10);
      if (!Number.isFinite(ms) || ms < 0) return; // without lg-debounce only "change" sends
      clearTimeout(debounce.get(bound));
      debounce.set(bound, setTimeout(() => send(name, build(), true), Math.min(ms, 10000)));
    };
    const onChange = (ev) => changed(ev, false);
    const onInput = (ev) => changed(ev, true);
    el.addEventListener("click", onClick);
    el.addEventListener("submit", onSubmit);
    el.addEventListener("change", onChange);
    el.addEventListener("input", onInput);
    view.unbind = () => {
      el.removeEventListener("click", onClick);
      el.removeEventListener("submit", onSubmit);
      el.removeEventListener("change", onChange);
      el.removeEventListener("input", onInput);
    };
  }

  // ---- live operations ----

  /**
   * Shows the live operation opId in container: subscribes to op:<opId>
   * (with recovery after a reconnect) and renders each report into the
   * container's parts, elements with data-lg-op-part="status", "log",
   * "percent", "error" and "result":
   *   - status, error, result: content replaced (error and result are
   *     un-hidden);
   *   - log: a line appended (an <li> in a list, else a <div>), at most
   *     maxLogLines kept;
   *   - percent: the value of the part if it is a <progress>, else of a
   *     <progress> inside it (made when missing);
   *   - swap: the content of the element inside container whose id is the
   *     report's target.
   * HTML goes through DOMPurify, text is set as textContent. A report with a
   * state (running, done, failed, cancelled) sets the container's
   * data-lg-op-state and calls onState(state, report). Reports whose seq is
   * not above the container's data-lg-op-seq (what the server rendered) or
   * the last one shown are skipped.
   *
   * @returns {Promise<OperationWatch>} resolves once subscribed.
   */
  async watchOperation(opId, container, options = {}) {
    if (typeof opId !== "string" || !OP_ID_RE.test(opId)) throw new TypeError("livegate: invalid operation id");
    if (!container || typeof container.querySelectorAll !== "function") throw new TypeError("livegate: container must be an element");
    if (this.#state === State.CLOSED) throw new LivegateError("closed", "client is closed");
    const opts = isObject(options) ? options : {};
    const dom = await this.#loadDom();
    const seqAttr = Number.parseInt(container.getAttribute("data-lg-op-seq") || "", 10);
    const stateAttr = container.getAttribute("data-lg-op-state");
    const channel = "op:" + opId;
    const watch = {
      opId, channel, container, dom,
      onState: typeof opts.onState === "function" ? opts.onState : null,
      lastSeq: Number.isSafeInteger(seqAttr) ? seqAttr : null,
      state: OP_STATES.has(stateAttr) ? stateAttr : null,
      stopped: false,
    };
    const handle = {
      opId,
      channel,
      get state() { return watch.state; },
      stop: () => {
        if (watch.stopped) return Promise.resolve({});
        watch.stopped = true;
        this.#watches.delete(watch);
        return this.unsubscribe(channel).catch((err) => {
          if (err.code === "bad_request") return {};
          throw err;
        });
      },
    };
    this.#watches.add(watch);
    const third = {};
    if (typeof opts.onReset === "function") third.onReset = opts.onReset;
    if (typeof opts.getToken === "function") third.getToken = opts.getToken;
    try {
      await this.subscribe(channel, (data) => this.#renderReport(watch, data), third);
    } catch (err) {
      watch.stopped = true;
      this.#watches.delete(watch);
      throw err;
    }
    return handle;
  }

  #renderReport(watch, data) {
    if (watch.stopped || !isObject(data)) return;
    if (hasOwn(data, "op") && data.op !== watch.opId) return;
    if (Number.isSafeInteger(data.seq)) {
      if (watch.lastSeq !== null && data.seq <= watch.lastSeq) return;
      watch.lastSeq = data.seq;
    }
    const {container, dom} = watch;
    const fill = (el) => {
      // The raw text when there is one (the server's html is then just its
      // escaped copy); otherwise the HTML, sanitised.
      if (typeof data.text === "string") el.textContent = data.text;
      else if (typeof data.html === "string") el.replaceChildren(dom.sanitize(data.html));
    };
    try {
      switch (data.type) {
        case "status": {
          const part = findPart(container, "status");
          if (part) fill(part);
          break;
        }
        case "error":
        case "result": {
          const part = findPart(container, data.type);
          if (part) {
            fill(part);
            part.hidden = false;
          }
          break;
        }
        case "log": {
          const part = findPart(container, "log");
          if (!part) break;
          const atBottom = part.scrollHeight - part.scrollTop - part.clientHeight < 4;
          const line = part.ownerDocument.createElement(part.localName === "ul" || part.localName === "ol" ? "li" : "div");
          fill(line);
          part.append(line);
          while (part.childElementCount > this.#opts.maxLogLines) part.firstElementChild.remove();
          if (atBottom) part.scrollTop = part.scrollHeight;
          break;
        }
        case "percent": {
          const part = findPart(container, "percent");
          if (!part || !Number.isFinite(data.percent)) break;
          const value = Math.min(100, Math.max(0, data.percent));
          let bar = part.localName === "progress" ? part : part.querySelector("progress");
          if (!bar) {
            bar = part.ownerDocument.createElement("progress");
            part.append(bar);
          }
          bar.max = 100;
          bar.value = value;
          bar.textContent = `${Math.round(value)} %`;
          break;
        }
        case "swap": {
          const target = findById(container, data.target);
          if (target && typeof data.html === "string") {
            dom.morph(target, dom.sanitize(data.html), true, () => false);
          } else if (target && typeof data.text === "string") {
            target.textContent = data.text;
          }
          break;
        }
        default:
          break; // "state" and types this client does not know
      }
    } catch (err) {
      this.#emitError(new LivegateError("internal", "cannot render operation report: " + errorText(err)));
    }
    if (typeof data.state === "string" && OP_STATES.has(data.state) && data.state !== watch.state) {
      watch.state = data.state;
      try { container.setAttribute("data-lg-op-state", data.state); } catch { /* not an element */ }
      if (watch.onState) {
        try { watch.onState(data.state, data); } catch (err) { this.#emitError(asError(err)); }
      }
    }
  }

  // ---- DOMPurify and idiomorph ----

  // Loads the two libraries once (again after a failure) and resolves with
  // {sanitize(html) -> DocumentFragment, morph(el, fragment, keepActive, skip)}.
  #loadDom() {
    if (this.#dom) return this.#dom;
    const opts = this.#opts;
    const p = (async () => {
      if (typeof globalThis.document === "undefined" && !opts.DOMPurify) {
        throw new LivegateError("dependency", "live views and operations need a DOM");
      }
      let base;
      try {
        base = new URL(opts.vendorBase || "./vendor/", import.meta.url);
      } catch (err) {
        throw new LivegateError("dependency", "bad vendorBase: " + errorText(err));
      }
      const load = async (file) => {
        try {
          return await import(new URL(file, base).href);
        } catch (err) {
          throw new LivegateError("dependency", `cannot load ${file}: ${errorText(err)}`);
        }
      };
      let purify = opts.DOMPurify || (await load("purify.es.mjs")).default;
      const morpher = opts.Idiomorph || (await load("idiomorph.esm.js")).Idiomorph;
      // A private instance: our hook and config never touch the page's.
      if (typeof purify === "function") purify = purify(globalThis.window);
      if (!purify || typeof purify.sanitize !== "function" || typeof purify.addHook !== "function" || purify.isSupported === false) {
        throw new LivegateError("dependency", "DOMPurify is not usable here");
      }
      if (!morpher || typeof morpher.morph !== "function") throw new LivegateError("dependency", "idiomorph is not usable");
      purify.addHook("uponSanitizeAttribute", (node, data) => {
        const name = String(data.attrName);
        if (HANDLER_ATTR_RE.test(name)) {
          data.keepAttr = false; // no inline event handler, ever
        } else if (LG_ATTR_RE.test(name)) {
          data.forceKeepAttr = true; // live-view bindings: inert strings for this client
        } else if (name === "name" && FORM_CONTROLS.has(String(node && node.nodeName).toLowerCase()) && FIELD_NAMES.has(data.attrValue)) {
          // DOMPurify drops every name that shadows a property of a form
          // (its DOM-clobbering defence); these few are common field names
          // whose form property neither livegate, DOMPurify nor idiomorph reads.
          data.forceKeepAttr = true;
        }
      });
      const config = () => ({
        RETURN_DOM_FRAGMENT: true, // no string round trip: what was checked is what is inserted
        FORBID_TAGS: FORBID_TAGS.slice(),
        ALLOW_DATA_ATTR: true,
        ALLOW_UNKNOWN_PROTOCOLS: false,
        WHOLE_DOCUMENT: false,
      });
      return {
        sanitize: (html) => purify.sanitize(html, config()),
        morph: (el, fragment, keepActive, skip) => {
          morpher.morph(el, fragment, {
            morphStyle: "innerHTML",
            ignoreActiveValue: Boolean(keepActive),
            restoreFocus: true,
            callbacks: {
              beforeNodeAdded: (node) => !(node.nodeType === 1 && BLOCKED_TAGS.has(node.localName)),
              beforeNodeMorphed: (oldNode) => !skip(oldNode),
              // Never copy an inline handler onto a live element (removing one is fine).
              beforeAttributeUpdated: (attr, _el, how) => how === "remove" || !HANDLER_ATTR_RE.test(attr),
            },
          });
        },
      };
    })();
    this.#dom = p;
    p.then((dom) => { if (this.#dom === p) this.#domReady = dom; }, () => { if (this.#dom === p) this.#dom = null; });
    return p;
  }

  // ---- connection lifecycle ----

  async #open() {
    const gen = ++this.#gen;
    this.#clearTimer("reconnect");
    this.#setState(State.CONNECTING);
    let token;
    try {
      token = await this.#getToken();
    } catch (err) {
      if (gen !== this.#gen) return;
      const e = new LivegateError("token", "could not get a token: " + errorText(err));
      if (err && err.fatal) {
        this.#shutdown(e, {code: 0, reason: "token"});
      } else {
        this.#emitError(e);
        this.#retry({code: 0, reason: "token"});
      }
      return;
    }
    if (gen !== this.#gen) return;
    if (typeof token !== "string" || token === "") {
      this.#shutdown(new LivegateError("token", "getToken did not return a token"), {code: 0, reason: "token"});
      return;
    }
    let ws;
    try {
      ws = new this.#WS(this.#url, SUBPROTOCOL);
    } catch (err) {
      this.#shutdown(new LivegateError("protocol", "cannot open WebSocket: " + errorText(err)), {code: 0, reason: "url"});
      return;
    }
    this.#ws = ws;
    this.#setTimer("connect", () => {
      if (ws !== this.#ws) return;
      this.#drop(ws);
      this.#disconnected({code: 0, reason: "connect timeout"});
    }, this.#opts.connectTimeout);
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      if (ws.protocol !== SUBPROTOCOL) {
        this.#drop(ws);
        this.#shutdown(new LivegateError("protocol", "server did not accept subprotocol " + SUBPROTOCOL), {code: 0, reason: "subprotocol"});
        return;
      }
      this.#tokens = this.#opts.burst; // a fresh bucket per connection, like the server's
      this.#lastRefill = Date.now();
      const id = this.#nextId++;
      // batch: the server may put several frames in one message, separated
      // by "\n" (fewer messages under load); #onMessage splits them.
      const text = JSON.stringify({id, method: "connect", params: {token, batch: true}});
      this.#pending.set(id, {
        method: "connect",
        resolve: (result) => this.#connected(ws, result),
        reject: (err) => {
          if (ws !== this.#ws) return;
          // The server closes the socket on a failed connect; an error reply
          // is unexpected, so start over.
          this.#emitError(err);
          this.#drop(ws);
          this.#disconnected({code: 0, reason: "connect failed"});
        },
      });
      this.#tokens--;
      this.#send(ws, text, "connect", {token});
    };
    ws.onmessage = (ev) => { if (ws === this.#ws) this.#onMessage(ev.data); };
    ws.onclose = (ev) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#disconnected({code: ev.code, reason: ev.reason || ""});
    };
    ws.onerror = () => {}; // a close event follows
  }

  #connected(ws, result) {
    if (ws !== this.#ws) return;
    if (!isObject(result) || typeof result.user !== "string" || !Number.isFinite(result.expires)) {
      this.#emitError(new LivegateError("protocol", "malformed connect result"));
      this.#drop(ws);
      this.#disconnected({code: 0, reason: "protocol"});
      return;
    }
    this.#clearTimer("connect");
    this.#connectResult = result;
    this.#connectedAt = Date.now();
    this.#setState(State.CONNECTED);
    this.#scheduleRefresh(result.expires);
    // Resubscribe first (with the last position, so nothing is missed), then
    // send what was issued while offline.
    for (const sub of this.#subs.values()) this.#sendSubscribe(sub);
    for (const view of this.#views.values()) if (view.state === "disconnected") this.#join(view);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const cmd of waiting) this.#queue.push(cmd);
    this.#pump();
    if (this.#connectDeferred) {
      const d = this.#connectDeferred;
      this.#connectDeferred = null;
      d.resolve(result);
    }
  }

  // The socket is gone (closed by the server or the network, or dropped by
  // us). Fail what was in flight and decide what to do next.
  #disconnected(info) {
    this.#clearTimer("connect");
    this.#clearTimer("refresh");
    this.#clearTimer("pump");
    this.#failInFlight(new LivegateError("disconnected", "connection closed"));
    for (const sub of this.#subs.values()) sub.status = "idle";
    // A view's ref lives as long as the connection: join again on reconnect.
    for (const view of this.#views.values()) {
      if (view.state !== "joined") continue;
      this.#clearViewTimers(view);
      view.ref = null;
      view.seq++;
      this.#setViewState(view, "disconnected");
    }
    this.#viewRefs.clear();
    this.#orphans = [];
    if (this.#debug) this.#log("closed", info.code, info.reason);
    const advice = adviceFor(info.code);
    if (advice === "stop") {
      const e = new LivegateError("closed", `connection closed by the server (${info.code}${info.reason ? " " + info.reason : ""})`);
      e.closeCode = info.code;
      this.#shutdown(e, info);
      return;
    }
    this.#retry(info);
  }

  #retry(info) {
    if (this.#connectedAt && Date.now() - this.#connectedAt >= 10000) this.#attempt = 0;
    this.#connectedAt = 0;
    const cap = Math.min(this.#opts.backoffMax, this.#opts.backoffMin * 2 ** Math.min(this.#attempt, 16));
    let delay = cap / 2 + Math.random() * (cap / 2);
    if (info.code === 4429) delay = Math.max(delay, 5000 + Math.random() * 5000); // server cooldown
    this.#attempt++;
    this.#setState(State.DISCONNECTED, info);
    this.#setTimer("reconnect", () => this.#open(), delay);
  }

  // Stops for good: close() or a fatal condition (err set).
  #shutdown(err, info) {
    this.#gen++;
    for (const name of Object.keys(this.#timers)) this.#clearTimer(name);
    if (this.#ws) {
      const ws = this.#ws;
      this.#drop(ws);
    }
    const reason = err || new LivegateError("closed", "client closed");
    this.#failInFlight(reason);
    for (const cmd of this.#waiting) this.#settle(cmd, null, reason);
    this.#waiting = [];
    for (const sub of this.#subs.values()) {
      sub.status = "gone";
      sub.first.reject(reason);
    }
    this.#subs.clear();
    for (const view of this.#views.values()) {
      this.#clearViewTimers(view);
      if (view.unbind) view.unbind();
      view.unbind = null;
      view.ref = null;
      view.seq++;
      this.#setViewState(view, "closed");
      view.first.reject(reason);
    }
    this.#views.clear();
    this.#viewRefs.clear();
    this.#orphans = [];
    for (const watch of this.#watches) watch.stopped = true;
    this.#watches.clear();
    this.#connectResult = null;
    this.#connectedAt = 0;
    if (err) this.#emitError(err);
    this.#setState(State.CLOSED, info);
    if (this.#connectDeferred) {
      const d = this.#connectDeferred;
      this.#connectDeferred = null;
      d.reject(reason);
    }
  }

  // Detaches from ws and closes it without triggering our close handling.
  #drop(ws) {
    if (this.#ws === ws) this.#ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(1000); } catch { /* already closing */ }
  }

  #failInFlight(err) {
    for (const cmd of this.#pending.values()) this.#settle(cmd, null, err);
    this.#pending.clear();
    for (const cmd of this.#queue) this.#settle(cmd, null, err);
    this.#queue = [];
  }

  // ---- token refresh ----

  // Refreshes about 30 s before expires (half-way when less is left).
  // Client and server clocks may disagree: a refresh that comes too late
  // only costs a reconnect (4409, then a fresh token).
  #scheduleRefresh(expires, delay) {
    const remaining = expires * 1000 - Date.now();
    if (remaining <= 0) return; // the server closes 4409; we reconnect with a new token
    if (delay === undefined) delay = remaining > 60000 ? remaining - 30000 : remaining / 2;
    const gen = this.#gen;
    this.#setTimer("refresh", () => {
      this.#doRefresh(gen).catch((err) => {
        if (gen !== this.#gen || this.#state !== State.CONNECTED) return;
        this.#emitError(err);
        // Try again while there is time; otherwise the server closes 4409
        // and we reconnect with a fresh token.
        const left = expires * 1000 - Date.now();
        if (left > 3000) this.#scheduleRefresh(expires, Math.min(10000, left / 3));
      });
    }, Math.max(1000, delay));
  }

  async #doRefresh(gen) {
    let token;
    try {
      token = await this.#getToken();
    } catch (err) {
      throw new LivegateError("token", "could not get a token: " + errorText(err));
    }
    if (gen !== this.#gen) throw new LivegateError("disconnected", "connection changed");
    if (typeof token !== "string" || token === "") throw new LivegateError("token", "getToken did not return a token");
    const result = await this.#command("refresh", {token}, {timeout: true, wait: false});
    if (!isObject(result) || !Number.isFinite(result.expires)) throw new LivegateError("protocol", "malformed refresh result");
    if (gen === this.#gen && this.#state === State.CONNECTED) {
      this.#connectResult = safeMerge(safeMerge({}, this.#connectResult), {expires: result.expires});
      this.#scheduleRefresh(result.expires);
    }
    return result;
  }

  // ---- subscriptions ----

  #sendSubscribe(sub) {
    if (sub.status === "pending" || sub.status === "active" || sub.status === "gone") return;
    sub.status = "pending";
    const gen = this.#gen;
    const go = (token) => {
      if (gen !== this.#gen || this.#subs.get(sub.channel) !== sub || this.#state !== State.CONNECTED) return;
      const params = {channel: sub.channel};
      if (token !== undefined) params.token = token;
      const since = sub.epoch !== null ? {offset: sub.offset, epoch: sub.epoch} : null;
      if (since) params.since = since;
      this.#command("subscribe", params, {timeout: false, wait: false}).then(
        (result) => this.#subscribed(sub, gen, result, since !== null),
        (err) => this.#subscribeFailed(sub, gen, err),
      );
    };
    if (!sub.getToken) {
      go(undefined);
      return;
    }
    Promise.resolve().then(() => sub.getToken(sub.channel)).then((token) => {
      if (typeof token !== "string" || token === "") throw new Error("getToken did not return a token");
      go(token);
    }).catch((err) => {
      if (gen !== this.#gen || this.#subs.get(sub.channel) !== sub) return;
      this.#subscribeFailed(sub, gen, new LivegateError("token", "could not get a subscription token: " + errorText(err)));
    });
  }

  #subscribed(sub, gen, result, hadSince) {
    if (gen !== this.#gen || this.#subs.get(sub.channel) !== sub) return;
    if (!isObject(result) || !isOffset(result.offset) || typeof result.epoch !== "string") {
      this.#subscribeFailed(sub, gen, new LivegateError("protocol", "malformed subscribe result"));
      return;
    }
    sub.status = "active";
    sub.retries = 0;
    if (hadSince && result.recovered === true) {
      const pubs = Array.isArray(result.publications) ? result.publications : [];
      for (const p of pubs) {
        if (!isObject(p) || !isOffset(p.offset) || p.offset <= sub.offset) continue; // duplicate
        sub.offset = p.offset;
        this.#deliver(sub, p.data, p.offset, result.epoch);
        if (this.#subs.get(sub.channel) !== sub) return; // unsubscribed from a callback
      }
    } else if (hadSince) {
      // Not everything missed could be recovered: the application must
      // reload its state. Partial publications are not delivered.
      this.#callReset(sub, result);
    }
    sub.offset = result.offset;
    sub.epoch = result.epoch;
    sub.first.resolve(result);
  }

  #subscribeFailed(sub, gen, err) {
    if (gen !== this.#gen || this.#subs.get(sub.channel) !== sub) return;
    if (err.code === "disconnected" || err.code === "closed") return; // resubscribed on reconnect
    sub.status = "idle";
    if ((err.code === "rate_limited" || err.code === "unavailable") && sub.retries < 5) {
      sub.retries++;
      const delay = 1000 * sub.retries + Math.random() * 1000;
      setTimeout(() => {
        if (gen === this.#gen && this.#state === State.CONNECTED) this.#sendSubscribe(sub);
      }, delay);
      return;
    }
    this.#subs.delete(sub.channel);
    sub.status = "gone";
    err.channel = sub.channel;
    if (sub.first.settled) {
      this.#emitError(err); // a resubscription failed: the subscription is gone
    } else {
      sub.first.reject(err);
    }
  }

  #onPush(p) {
    if (typeof p.channel !== "string") return;
    if (p.resubscribe === true) {
      this.#resubscribeFrom(p.channel);
      return;
    }
    if (hasOwn(p, "join") || hasOwn(p, "leave")) {
      const join = hasOwn(p, "join");
      const who = join ? p.join : p.leave;
      const sub = this.#subs.get(p.channel);
      if (!sub || !sub.onJoinLeave || !isObject(who) || typeof who.conn !== "string" || typeof who.user !== "string") return;
      try {
        sub.onJoinLeave({join, conn: who.conn, user: who.user});
      } catch (err) {
        this.#emitError(asError(err));
      }
      return;
    }
    if (!isOffset(p.offset) || typeof p.epoch !== "string") return;
    const sub = this.#subs.get(p.channel);
    if (!sub || sub.status !== "active") return;
    if (p.epoch !== sub.epoch) {
      // The stream was restarted on the server. Offset 1 means nothing of the
      // new stream was missed; anything else means a gap.
      const gap = p.offset !== 1;
      sub.epoch = p.epoch;
      sub.offset = p.offset;
      if (gap) this.#callReset(sub, {offset: p.offset, epoch: p.epoch, recovered: false});
      this.#deliver(sub, p.data, p.offset, p.epoch);
      return;
    }
    if (p.offset <= sub.offset) return; // duplicate
    const gap = p.offset !== sub.offset + 1;
    sub.offset = p.offset;
    if (gap) this.#callReset(sub, {offset: p.offset, epoch: p.epoch, recovered: false});
    this.#deliver(sub, p.data, p.offset, p.epoch);
  }

  // The server lost publications of channel: unsubscribe, then subscribe
  // again with since = the last position delivered, as after a reconnect.
  #resubscribeFrom(channel) {
    const sub = this.#subs.get(channel);
    if (!sub || sub.status !== "active") return;
    const gen = this.#gen;
    sub.status = "resync";
    const again = () => {
      if (gen !== this.#gen || this.#subs.get(channel) !== sub || sub.status !== "resync") return;
      sub.status = "idle";
      this.#sendSubscribe(sub);
    };
    this.#command("unsubscribe", {channel}, {timeout: true, wait: false}).then(again, (err) => {
      // Disconnected: the reconnect resubscribes. Otherwise (e.g. the
      // server no longer had the subscription) subscribe anyway.
      if (err.code === "disconnected" || err.code === "closed") return;
      again();
    });
  }

  #deliver(sub, data, offset, epoch) {
    try {
      sub.onPush(data, {channel: sub.channel, offset, epoch});
    } catch (err) {
      this.#emitError(asError(err));
    }
  }

  #callReset(sub, result) {
    if (!sub.onReset) return;
    try {
      sub.onReset(result);
    } catch (err) {
      this.#emitError(asError(err));
    }
  }

  // ---- commands ----

  // Sends a command. wait: issued while not connected, wait for the
  // connection; otherwise reject at once. timeout: reject after callTimeout.
  #command(method, params, {timeout, wait}) {
    return new Promise((resolve, reject) => {
      if (this.#state === State.CLOSED) {
        reject(new LivegateError("closed", "client is closed"));
        return;
      }
      if (this.#state !== State.CONNECTED && !wait) {
        reject(new LivegateError("disconnected", "not connected"));
        return;
      }
      const id = this.#nextId++;
      let text;
      try {
        text = JSON.stringify({id, method, params});
      } catch (err) {
        reject(new LivegateError("bad_request", "cannot encode: " + err.message));
        return;
      }
      if (encoder.encode(text).length > this.#opts.maxFrameBytes) {
        reject(new LivegateError("too_large", "message too large"));
        return;
      }
      const cmd = {id, method, params, text, resolve, reject, timer: 0};
      if (timeout) {
        cmd.timer = setTimeout(() => {
          this.#pending.delete(id);
          this.#queue = this.#queue.filter((c) => c !== cmd);
          this.#waiting = this.#waiting.filter((c) => c !== cmd);
          reject(new LivegateError("timeout", "no reply in time"));
        }, this.#opts.callTimeout);
      }
      if (this.#state === State.CONNECTED) {
        this.#queue.push(cmd);
        this.#pump();
      } else {
        this.#waiting.push(cmd);
      }
    });
  }

  // Sends queued commands while the local token bucket allows.
  #pump() {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN || this.#state !== State.CONNECTED) return;
    const now = Date.now();
    this.#tokens = Math.min(this.#opts.burst, this.#tokens + ((now - this.#lastRefill) * this.#opts.rate) / 1000);
    this.#lastRefill = now;
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      const cmd = this.#queue.shift();
      this.#tokens--;
      this.#pending.set(cmd.id, cmd);
      this.#send(ws, cmd.text, cmd.method, cmd.params);
    }
    if (this.#queue.length > 0 && !this.#timers.pump) {
      const wait = Math.ceil(((1 - this.#tokens) * 1000) / this.#opts.rate);
      this.#setTimer("pump", () => this.#pump(), Math.max(1, wait));
    }
  }

  #send(ws, text, method, params) {
    if (this.#debug) this.#log("send", method, redact(params));
    try {
      ws.send(text);
    } catch (err) {
      this.#emitError(new LivegateError("disconnected", "send failed: " + errorText(err)));
    }
  }

  #settle(cmd, result, err) {
    if (cmd.timer) clearTimeout(cmd.timer);
    if (err) cmd.reject(err);
    else cmd.resolve(result);
  }

  #onMessage(data) {
    if (typeof data !== "string") return; // binary frames are not part of v1
    // The connect asked for batches: a message holds one or more frames
    // separated by "\n", which the server never leaves inside a frame.
    const frames = splitFrames(data);
    if (frames.length === 1 && !this.#draining) {
      this.#onFrame(frames[0]);
      return;
    }
    const gen = this.#gen;
    for (const frame of frames) this.#inbox.push({gen, frame});
    if (!this.#draining) this.#drain();
  }

  // Handles the frames of batched messages in order, each as if it had come
  // in a message of its own: after a reply, whatever awaited it (a
  // subscribe marking its subscription active, say) runs before the next
  // frame, so a push batched right behind its subscribe reply is not lost.
  async #drain() {
    this.#draining = true;
    try {
      while (this.#inbox.length > 0) {
        const {gen, frame} = this.#inbox.shift();
        if (gen !== this.#gen) continue; // from a socket since replaced
        if (this.#onFrame(frame) && this.#inbox.length > 0) {
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  // Handles one frame; true when it was the reply to a pending command.
  #onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      if (this.#debug) this.#log("ignoring a frame that is not JSON");
      return;
    }
    if (!isObject(msg)) return;
    if (hasOwn(msg, "push")) {
      if (isObject(msg.push)) {
        if (this.#debug) this.#log("push", msg.push.channel, msg.push.offset);
        this.#onPush(msg.push);
      }
      return;
    }
    if (hasOwn(msg, "patch") && !hasOwn(msg, "id")) {
      if (isObject(msg.patch)) {
        if (this.#debug) this.#log("patch", msg.patch.ref, msg.patch.version);
        this.#onPatchPush(msg.patch);
      }
      return;
    }
    if (hasOwn(msg, "view_closed") && !hasOwn(msg, "id")) {
      const vc = msg.view_closed;
      if (isObject(vc) && typeof vc.ref === "string") {
        const view = this.#viewRefs.get(vc.ref);
        if (view) this.#viewClosed(view, vc.code);
      }
      return;
    }
    if (!hasOwn(msg, "id") || !Number.isSafeInteger(msg.id)) return;
    const cmd = this.#pending.get(msg.id);
    if (!cmd) return;
    this.#pending.delete(msg.id);
    if (hasOwn(msg, "error")) {
      const e = isObject(msg.error) ? msg.error : {};
      const code = typeof e.code === "string" ? e.code : "internal";
      const message = typeof e.message === "string" ? e.message : code;
      if (this.#debug) this.#log("error reply", msg.id, code);
      this.#settle(cmd, null, new LivegateError(code, message, typeof e.detail === "string" ? e.detail : undefined));
      return true;
    }
    if (this.#debug) this.#log("reply", msg.id);
    this.#settle(cmd, hasOwn(msg, "result") ? msg.result : null, null);
    return true;
  }

  // ---- helpers ----

  // Debug output: every part through sanitizeForLog, printed with a "%s"
  // format so that nothing from the server is read as a format directive.
  #log(...parts) {
    const line = ["livegate:", ...parts.map((p) => sanitizeForLog(p))].join(" ");
    try { console.debug("%s", sanitizeForLog(line, 1000)); } catch { /* no console */ }
  }

  #setState(state, info) {
    if (this.#state === state) return;
    this.#state = state;
    for (const fn of [...this.#listeners.state]) {
      try { fn(state, info || {}); } catch (err) { this.#emitError(asError(err)); }
    }
  }

  #emitError(err) {
    if (this.#debug) this.#log("error", err);
    for (const fn of [...this.#listeners.error]) {
      try { fn(err); } catch { /* a broken listener must not break the client */ }
    }
  }

  #setTimer(name, fn, ms) {
    this.#clearTimer(name);
    this.#timers[name] = setTimeout(() => {
      this.#timers[name] = 0;
      fn();
    }, Math.min(MAX_TIMER, ms));
  }

  #clearTimer(name) {
    if (this.#timers[name]) clearTimeout(this.#timers[name]);
    this.#timers[name] = 0;
  }
}
