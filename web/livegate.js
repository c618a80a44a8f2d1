// livegate.js: the browser client for livegate wire protocol v1.
//
// A dependency-free ES module. The exact contract it implements is
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
// The client fetches a fresh token for every connection attempt (tokens are
// usually single-use), refreshes the connection's token about 30 s before it
// expires, reconnects with jittered exponential back-off following the
// server's close-code advice, resubscribes with the last seen stream
// position so that no message is lost or delivered twice, and paces its own
// commands under the server's default rate limit.
//
// It never evaluates or injects markup: data from the server is handed to
// the application's callbacks as parsed JSON values.

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
 * "token" (getToken failed) and "protocol" (the server broke the protocol).
 */
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

export class Client {
  #url;
  #getToken;
  #debug;
  #WS;
  #opts;

  #state = State.CLOSED;
  #ws = null;
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

  /**
   * @param {string} url the gateway's WebSocket URL, e.g. "wss://host/ws".
   *   Never put a token in it: the server ignores query-string tokens.
   * @param {object} options
   * @param {() => Promise<string>} options.getToken returns a fresh connect
   *   token; called before every connection attempt and every refresh. If it
   *   rejects with an error whose `fatal` property is true, the client stops.
   * @param {boolean} [options.debug] log frames (tokens redacted) to the console.
   * @param {number} [options.callTimeout=30000] ms before call/publish/unsubscribe reject with "timeout".
   * @param {number} [options.connectTimeout=10000] ms from opening the socket to the connect reply.
   * @param {number} [options.backoffMin=500] first reconnect delay cap in ms.
   * @param {number} [options.backoffMax=30000] largest reconnect delay in ms.
   * @param {number} [options.rate=50] commands per second the client sends at most.
   * @param {number} [options.burst=10] commands the client may send at once.
   * @param {number} [options.maxFrameBytes=65536] largest frame the client sends.
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
    };
  }

  /** The current state: "connecting", "connected", "disconnected" or "closed". */
  get state() { return this.#state; }

  /**
   * Registers fn for "state" (fn(state, info) where info is {code, reason}
   * after a close) or "error" (fn(LivegateError)). Returns a function that
   * removes the listener.
   */
  on(event, fn) {
    const set = this.#listeners[event];
    if (!set) throw new TypeError(`livegate: unknown event ${JSON.stringify(event)}`);
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
   * one. Resolves with the first subscribe result {offset, epoch}.
   */
  subscribe(channel, onPush, third) {
    if (typeof channel !== "string" || channel === "") return Promise.reject(new TypeError("livegate: channel must be a non-empty string"));
    if (typeof onPush !== "function") return Promise.reject(new TypeError("livegate: onPush must be a function"));
    let onReset = null;
    let getToken = null;
    if (typeof third === "function") {
      onReset = third;
    } else if (isObject(third)) {
      if (typeof third.onReset === "function") onReset = third.onReset;
      if (typeof third.getToken === "function") getToken = third.getToken;
    }
    if (this.#state === State.CLOSED) return Promise.reject(new LivegateError("closed", "client is closed"));
    if (this.#subs.has(channel)) return Promise.reject(new LivegateError("bad_request", "already subscribed"));
    const sub = {channel, onPush, onReset, getToken, offset: null, epoch: null, status: "idle", retries: 0, first: deferred()};
    this.#subs.set(channel, sub);
    if (this.#state === State.CONNECTED) this.#sendSubscribe(sub);
    return sub.first.promise;
  }

  /** Unsubscribes from channel; resolves with {} once the server confirmed. */
  unsubscribe(channel) {
    const sub = this.#subs.get(channel);
    if (!sub) return Promise.reject(new LivegateError("bad_request", "not subscribed"));
    this.#subs.delete(channel);
    const wasSent = sub.status === "pending" || sub.status === "active";
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
      const e = new LivegateError("token", "could not get a token: " + (err && err.message ? err.message : String(err)));
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
      this.#shutdown(new LivegateError("protocol", "cannot open WebSocket: " + (err && err.message ? err.message : String(err))), {code: 0, reason: "url"});
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
      const text = JSON.stringify({id, method: "connect", params: {token}});
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
    if (this.#debug) console.debug("livegate: closed", info.code, info.reason);
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
      throw new LivegateError("token", "could not get a token: " + (err && err.message ? err.message : String(err)));
    }
    if (gen !== this.#gen) throw new LivegateError("disconnected", "connection changed");
    if (typeof token !== "string" || token === "") throw new LivegateError("token", "getToken did not return a token");
    const result = await this.#command("refresh", {token}, {timeout: true, wait: false});
    if (!isObject(result) || !Number.isFinite(result.expires)) throw new LivegateError("protocol", "malformed refresh result");
    if (gen === this.#gen && this.#state === State.CONNECTED) {
      this.#connectResult = {...this.#connectResult, expires: result.expires};
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
      this.#subscribeFailed(sub, gen, new LivegateError("token", "could not get a subscription token: " + (err && err.message ? err.message : String(err))));
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
    if (typeof p.channel !== "string" || !isOffset(p.offset) || typeof p.epoch !== "string") return;
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

  #deliver(sub, data, offset, epoch) {
    try {
      sub.onPush(data, {channel: sub.channel, offset, epoch});
    } catch (err) {
      this.#emitError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #callReset(sub, result) {
    if (!sub.onReset) return;
    try {
      sub.onReset(result);
    } catch (err) {
      this.#emitError(err instanceof Error ? err : new Error(String(err)));
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
    if (this.#debug) console.debug("livegate: send", method, redact(params));
    try {
      ws.send(text);
    } catch (err) {
      this.#emitError(new LivegateError("disconnected", "send failed: " + (err && err.message ? err.message : String(err))));
    }
  }

  #settle(cmd, result, err) {
    if (cmd.timer) clearTimeout(cmd.timer);
    if (err) cmd.reject(err);
    else cmd.resolve(result);
  }

  #onMessage(data) {
    if (typeof data !== "string") return; // binary frames are not part of v1
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      if (this.#debug) console.debug("livegate: ignoring a frame that is not JSON");
      return;
    }
    if (!isObject(msg)) return;
    if (hasOwn(msg, "push")) {
      if (isObject(msg.push)) {
        if (this.#debug) console.debug("livegate: push", msg.push.channel, msg.push.offset);
        this.#onPush(msg.push);
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
      if (this.#debug) console.debug("livegate: error reply", msg.id, code);
      this.#settle(cmd, null, new LivegateError(code, message, typeof e.detail === "string" ? e.detail : undefined));
      return;
    }
    if (this.#debug) console.debug("livegate: reply", msg.id);
    this.#settle(cmd, hasOwn(msg, "result") ? msg.result : null, null);
  }

  // ---- helpers ----

  #setState(state, info) {
    if (this.#state === state) return;
    this.#state = state;
    for (const fn of [...this.#listeners.state]) {
      try { fn(state, info || {}); } catch (err) { this.#emitError(err instanceof Error ? err : new Error(String(err))); }
    }
  }

  #emitError(err) {
    if (this.#debug) console.debug("livegate: error", err && err.code, err && err.message);
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
