// livegate demo page script. Loaded as a module under a strict CSP
// (script-src 'self'): no inline code, no eval, and every string from the
// network is rendered with textContent, never as markup.
import {Client} from "/livegate.js";

const USER_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TEXT = 500; // characters (code points)
const MAX_LOG = 500; // lines kept in the log

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: missing element #${id}`);
  return el;
};

const ui = {
  user: $("user"),
  signin: $("signin"),
  signout: $("signout"),
  signinForm: $("signin-form"),
  status: $("status"),
  whoami: $("whoami"),
  room: $("room"),
  join: $("join"),
  joinForm: $("join-form"),
  channel: $("channel"),
  roomName: $("room-name"),
  log: $("log"),
  text: $("text"),
  send: $("send"),
  sendForm: $("send-form"),
  notice: $("notice"),
};

// Labels avoid "disconnected" containing "connected"; the exact client
// state is in data-state.
const LABELS = {
  "signed-out": "signed out",
  connecting: "connecting…",
  connected: "connected",
  disconnected: "reconnecting…",
  closed: "offline",
};

const MESSAGES = {
  rate_limited: "Slow down: too many messages (rate_limited).",
  bad_request: "The server rejected the message (bad_request).",
  forbidden: "Not allowed (forbidden).",
  not_available: "That action is not available (not_available).",
  limit_exceeded: "Too many rooms joined (limit_exceeded).",
  too_large: "The message is too large (too_large).",
  unauthorized: "Your session could not be renewed (unauthorized).",
  internal: "The server failed to handle that (internal).",
  unavailable: "The server is temporarily unavailable; try again (unavailable).",
  disconnected: "Not connected: the message was not sent (disconnected).",
  timeout: "No answer from the server (timeout).",
  token: "Could not get a sign-in token (token).",
  closed: "Not connected; sign in again (closed).",
};

let client = null; // the current Client, or null when signed out
let me = null; // the signed-in user as the server reported it
let room = null; // the room joined or being joined

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function wsURL() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function describe(err) {
  const code = err && typeof err.code === "string" ? err.code : "";
  if (code === "closed" && err.closeCode) {
    return `Disconnected by the server (${err.closeCode}). Sign in again.`;
  }
  if (code === "token" && err.message) return `${err.message} (token)`;
  if (MESSAGES[code]) return MESSAGES[code];
  return code ? `Error: ${code}` : `Error: ${err && err.message ? err.message : String(err)}`;
}

function notify(message, isError = false) {
  ui.notice.textContent = message;
  ui.notice.classList.toggle("error", isError);
}

function setStatus(state) {
  ui.status.dataset.state = state;
  ui.status.textContent = LABELS[state] || state;
}

function setRoomLabel(name) {
  ui.roomName.textContent = name ? `in ${name}` : "";
  ui.channel.textContent = `room:${name || "…"}`;
}

function clearLog() {
  ui.log.replaceChildren();
}

function appendToLog(li) {
  const log = ui.log;
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
  if (nearBottom) log.scrollTop = log.scrollHeight;
}

function addSystem(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  appendToLog(li);
}

function addMessage(user, text) {
  const li = document.createElement("li");
  li.className = "msg";
  if (user === me) li.classList.add("mine");
  const time = document.createElement("time");
  time.className = "time";
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  const who = document.createElement("span");
  who.className = "user";
  who.textContent = user;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(time, who, body);
  appendToLog(li);
}

// The CSRF token the server put in the page; the token endpoint refuses
// requests without it.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

// A fresh development token per call: the client asks for one before every
// connection attempt and every refresh.
async function fetchToken(user) {
  let res;
  try {
    res = await fetch("/dev/token", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
      body: JSON.stringify({user}),
    });
  } catch {
    throw new Error("token request failed (network)");
  }
  if (!res.ok) {
    const err = new Error(`token request failed (HTTP ${res.status})`);
    // A client error will not go away by retrying: stop the client.
    err.fatal = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
    throw err;
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error("token request failed (bad response)");
  }
  if (!isObject(body) || typeof body.token !== "string" || body.token === "") {
    throw new Error("token request failed (bad response)");
  }
  return body.token;
}

function signOut() {
  if (client) client.close();
  client = null;
  me = null;
  room = null;
  ui.whoami.hidden = true;
  ui.whoami.textContent = "";
  ui.signout.hidden = true;
  setStatus("signed-out");
  setRoomLabel(null);
}

async function signIn(user) {
  signOut();
  clearLog();
  const c = new Client(wsURL(), {getToken: () => fetchToken(user)});
  client = c;
  c.on("state", (state) => {
    if (c !== client) return;
    setStatus(state);
    if (state === "disconnected") notify("Connection lost; reconnecting…");
    if (state === "connected") notify("");
  });
  c.on("error", (err) => {
    if (c !== client) return;
    notify(describe(err), true);
  });
  setStatus("connecting");
  notify("");
  try {
    const result = await c.connect();
    if (c !== client) return;
    me = result.user;
    ui.whoami.textContent = `as ${result.user}`;
    ui.whoami.hidden = false;
    ui.signout.hidden = false;
    notify(`Signed in as ${result.user}.`);
  } catch (err) {
    if (c !== client) return;
    notify(describe(err), true);
  }
}

async function join(name) {
  if (!client) {
    notify("Sign in first.", true);
    return;
  }
  if (name === room) {
    notify(`Already in ${name}.`);
    return;
  }
  const c = client;
  const old = room;
  room = name;
  if (old) c.unsubscribe(`room:${old}`).catch(() => {});
  clearLog();
  setRoomLabel(name);
  addSystem(`Joining ${name}…`);
  try {
    await c.subscribe(
      `room:${name}`,
      (data) => {
        if (c !== client || room !== name) return;
        if (!isObject(data) || typeof data.user !== "string" || typeof data.text !== "string") return;
        addMessage(data.user, data.text);
      },
      () => {
        if (c === client && room === name) {
          addSystem("Some messages could not be recovered after reconnecting.");
        }
      },
    );
    if (c !== client || room !== name) return;
    addSystem(`Joined ${name}.`);
    notify("");
  } catch (err) {
    if (c !== client || room !== name || err.code === "unsubscribed") return;
    room = null;
    setRoomLabel(null);
    addSystem(`Could not join ${name}.`);
    notify(describe(err), true);
  }
}

async function send(text) {
  if (!client) {
    notify("Sign in first.", true);
    return;
  }
  if (!room) {
    notify("Join a room first.", true);
    return;
  }
  const n = [...text].length;
  if (n === 0) {
    notify("Type a message first.", true);
    return;
  }
  if (n > MAX_TEXT) {
    notify(`Messages are at most ${MAX_TEXT} characters (this one has ${n}).`, true);
    return;
  }
  try {
    await client.call("say", {room, text});
    if (ui.text.value.trim() === text) ui.text.value = "";
    notify("");
  } catch (err) {
    notify(describe(err), true);
  }
}

ui.signinForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const user = ui.user.value.trim();
  if (!USER_RE.test(user)) {
    notify("User names are 1 to 32 letters, digits, '_', '.' or '-'.", true);
    ui.user.focus();
    return;
  }
  signIn(user);
});

ui.signout.addEventListener("click", () => {
  signOut();
  clearLog();
  notify("Signed out.");
});

ui.joinForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = ui.room.value.trim();
  if (!ROOM_RE.test(name)) {
    notify("Room names are 1 to 64 letters, digits, '_', '.' or '-'.", true);
    ui.room.focus();
    return;
  }
  join(name);
});

ui.sendForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  send(ui.text.value.trim());
});

setStatus("signed-out");
setRoomLabel(null);
ui.user.focus();
