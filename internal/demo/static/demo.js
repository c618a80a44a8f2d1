// livegate demo page script. Loaded as a module under a strict CSP (a
// per-request nonce, no 'unsafe-inline'): no inline code, no eval, and
// every string from the network is rendered with textContent, never as
// markup. Server-rendered HTML (the live board, operation reports) goes
// through livegate.js, which sanitises it.
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
const maybe = (id) => document.getElementById(id);

const ui = {
  user: maybe("user"), // the sign-in form is on signed-out pages only
  password: maybe("password"),
  signin: maybe("signin"),
  signout: $("signout"),
  signoutForm: $("signout-form"),
  signinForm: maybe("signin-form"),
  authNotice: maybe("auth-notice"),
  registerForm: maybe("register-form"),
  regUser: maybe("reg-user"),
  regPassword: maybe("reg-password"),
  registerSubmit: maybe("register-submit"),
  registerNotice: maybe("register-notice"),
  status: $("status"),
  whoami: $("whoami"),
  kind: $("kind"),
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
  board: maybe("board"),
  boardNotice: maybe("board-notice"),
  taskForm: maybe("task-form"),
  taskLabel: maybe("task-label"),
  taskFail: maybe("task-fail"),
  taskStart: maybe("task-start"),
  task: maybe("task"),
  taskNotice: maybe("task-notice"),
};

// The account the page was rendered for (a login session), or "".
const ACCOUNT = (() => {
  const meta = document.querySelector('meta[name="livegate-user"]');
  const name = meta ? meta.getAttribute("content") || "" : "";
  return USER_RE.test(name) ? name : "";
})();

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
  csrf: "The page has no CSRF token; reload it (csrf).",
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

function say(el, message, isError = false) {
  if (!el) return;
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function notify(message, isError = false) {
  say(ui.notice, message, isError);
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

// The CSRF token the server put in the page; the token endpoint, the
// forms, the ops endpoints and live-view joins refuse requests without it.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

// A same-origin POST with the CSRF token; body is sent as JSON when given.
function post(url, body) {
  const headers = {"X-CSRF-Token": csrfToken()};
  const init = {method: "POST", credentials: "same-origin", cache: "no-store", headers};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(url, init);
}

async function readJSON(res) {
  try {
    const body = await res.json();
    return isObject(body) ? body : {};
  } catch {
    return {};
  }
}

// A fresh connect token per call: the client asks for one before every
// connection attempt and every refresh. With the page's login session the
// server binds it to that session (and its member group).
async function fetchToken(user) {
  let res;
  try {
    res = await post("/dev/token", {user});
  } catch {
    throw new Error("token request failed (network)");
  }
  if (!res.ok) {
    const err = new Error(`token request failed (HTTP ${res.status})`);
    // A client error will not go away by retrying: stop the client.
    err.fatal = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
    throw err;
  }
  const body = await readJSON(res);
  if (typeof body.token !== "string" || body.token === "") {
    throw new Error("token request failed (bad response)");
  }
  return body.token;
}

function signOut() {
  if (client) client.close();
  client = null;
  me = null;
  room = null;
  stopTaskWatch();
  if (!ACCOUNT) {
    ui.whoami.hidden = true;
    ui.whoami.textContent = "";
    ui.kind.hidden = true;
    ui.signout.hidden = true;
  }
  setStatus(ACCOUNT ? "closed" : "signed-out");
  setRoomLabel(null);
}

// Connects as user: the page's account, or a guest name (dev only).
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
    if (err && typeof err.view === "string") say(ui.boardNotice, describe(err), true);
    else notify(describe(err), true);
  });
  setStatus("connecting");
  notify("");
  try {
    const result = await c.connect();
    if (c !== client) return;
    me = result.user;
    ui.whoami.textContent = `as ${result.user}`;
    ui.whoami.hidden = false;
    ui.kind.textContent = ACCOUNT ? "account" : "guest";
    ui.kind.classList.toggle("account", Boolean(ACCOUNT));
    ui.kind.hidden = false;
    ui.signout.hidden = false;
    if (ACCOUNT) {
      await Promise.all([mountBoard(c), resumeTask(c)]);
    } else {
      notify(`Signed in as ${result.user} (guest).`);
    }
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

// ---------------------------------------------------------------- accounts

let lockTimer = 0;

// Counts down a lockout in the sign-in notice, the sign-in button disabled.
function lockedFor(seconds) {
  clearInterval(lockTimer);
  let left = Math.max(1, Math.ceil(seconds));
  const tick = () => {
    if (left <= 0) {
      clearInterval(lockTimer);
      ui.signin.disabled = false;
      say(ui.authNotice, "You can try again now.");
      return;
    }
    say(ui.authNotice, `Too many failed attempts. Try again in ${left} s.`, true);
    left--;
  };
  ui.signin.disabled = true;
  tick();
  lockTimer = setInterval(tick, 1000);
}

async function login(user, password) {
  ui.signin.disabled = true;
  say(ui.authNotice, "Signing in…");
  let res;
  try {
    res = await post("/login", {user, password});
  } catch {
    ui.signin.disabled = false;
    say(ui.authNotice, "Could not reach the server.", true);
    return;
  }
  if (res.ok) {
    // The server renders the board and the task for the new session.
    location.assign("/");
    return;
  }
  const body = await readJSON(res);
  if (res.status === 429 && Number.isFinite(body.retry_after)) {
    lockedFor(body.retry_after);
    return;
  }
  ui.signin.disabled = false;
  say(ui.authNotice, typeof body.message === "string" ? body.message : `Sign-in failed (HTTP ${res.status}).`, true);
  if (ui.password) {
    ui.password.value = "";
    ui.password.focus();
  }
}

async function register(user, password) {
  ui.registerSubmit.disabled = true;
  say(ui.registerNotice, "Creating the account…");
  let res;
  try {
    res = await post("/register", {user, password});
  } catch {
    ui.registerSubmit.disabled = false;
    say(ui.registerNotice, "Could not reach the server.", true);
    return;
  }
  if (res.ok) {
    location.assign("/");
    return;
  }
  const body = await readJSON(res);
  ui.registerSubmit.disabled = false;
  say(ui.registerNotice, typeof body.message === "string" ? body.message : `Registration failed (HTTP ${res.status}).`, true);
}

async function logout() {
  ui.signout.disabled = true;
  if (client) client.close();
  client = null;
  try {
    await post("/logout", {});
  } catch {
    /* the page reloads signed out or not; the server decides */
  }
  location.assign("/");
}

// ---------------------------------------------------------------- live board

// Joins the live board the server rendered into #board.
async function mountBoard(c) {
  if (!ui.board || !ui.board.querySelector("[data-lg-view]")) return;
  try {
    await c.mountViews(ui.board, {getSession: fetchBoardSession});
    say(ui.boardNotice, "");
  } catch (err) {
    if (c === client) say(ui.boardNotice, `The board is not live: ${describe(err)}`, true);
  }
}

// A fresh session token for a re-join, should the page's have expired.
async function fetchBoardSession() {
  const res = await fetch("/board/session", {credentials: "same-origin", cache: "no-store"});
  const body = await readJSON(res);
  if (!res.ok || typeof body.session !== "string") throw new Error(`HTTP ${res.status}`);
  return body.session;
}

// The board's post field empties once the post it held shows.
let pendingPost = null;
if (ui.board) {
  ui.board.addEventListener("submit", (ev) => {
    const input = ev.target && ev.target.querySelector ? ev.target.querySelector('input[name="text"]') : null;
    pendingPost = input ? input.value : null;
    say(ui.boardNotice, "");
  });
  ui.board.addEventListener("lg:update", () => {
    const input = ui.board.querySelector('input[name="text"]');
    if (input && pendingPost !== null && input.value === pendingPost) input.value = "";
    pendingPost = null;
  });
  ui.board.addEventListener("lg:error", (ev) => {
    const code = ev.detail && typeof ev.detail.code === "string" ? ev.detail.code : "internal";
    say(ui.boardNotice, `The board stopped: ${MESSAGES[code] || code}. Reload the page.`, true);
  });
}

// ---------------------------------------------------------------- long task

let taskWatch = null; // the OperationWatch of the task shown, or null

function taskPart(name) {
  return ui.task ? ui.task.querySelector(`[data-lg-op-part="${name}"]`) : null;
}

function stopTaskWatch() {
  if (!taskWatch) return;
  const w = taskWatch;
  taskWatch = null;
  w.stop().catch(() => {});
}

// Buttons and badge follow the operation's state.
function setTaskState(state) {
  if (!ui.task) return;
  const running = state === "running";
  $("task-state").textContent = state;
  $("task-cancel").disabled = !running;
  $("task-restart").disabled = running;
  if (ui.taskStart) ui.taskStart.disabled = running;
}

// Shows a new operation in the task widget, with nothing reported yet.
function resetTask(id) {
  const t = ui.task;
  t.hidden = false;
  t.dataset.op = id;
  t.setAttribute("data-lg-op-seq", "1"); // seq 1, "running", was published at start
  t.setAttribute("data-lg-op-state", "running");
  $("task-id").textContent = id;
  $("task-pct").textContent = "0 %";
  const bar = taskPart("percent");
  bar.value = 0;
  $("task-chunks").replaceChildren();
  taskPart("status").textContent = "Starting…";
  for (const name of ["error", "result"]) {
    const part = taskPart(name);
    part.replaceChildren();
    part.hidden = true;
  }
  taskPart("log").replaceChildren();
  setTaskState("running");
}

async function watchTask(c, id) {
  stopTaskWatch();
  const w = await c.watchOperation(id, ui.task, {
    onState: (state) => setTaskState(state),
    onReset: () => say(ui.taskNotice, "Some reports were missed while offline; reload for the full log."),
  });
  if (c !== client || ui.task.dataset.op !== id) {
    w.stop().catch(() => {});
    return;
  }
  taskWatch = w;
}

// After connecting: follow the operation the server rendered, if it runs.
async function resumeTask(c) {
  const t = ui.task;
  if (!t || !t.dataset.op || t.getAttribute("data-lg-op-state") !== "running") return;
  try {
    await watchTask(c, t.dataset.op);
  } catch (err) {
    say(ui.taskNotice, `Cannot follow the task: ${describe(err)}`, true);
  }
}

function connected() {
  return client !== null && client.state === "connected";
}

async function startTask() {
  if (!connected()) {
    say(ui.taskNotice, "Not connected yet; wait a moment.", true);
    return;
  }
  ui.taskStart.disabled = true;
  say(ui.taskNotice, "");
  try {
    const res = await post("/ops/start", {label: ui.taskLabel.value, fail: ui.taskFail.checked});
    const body = await readJSON(res);
    if (!res.ok || typeof body.op !== "string") {
      ui.taskStart.disabled = false;
      const why = body.error === "too_many_operations" ? "too many tasks are running" : `HTTP ${res.status}`;
      say(ui.taskNotice, `The task did not start (${why}).`, true);
      return;
    }
    resetTask(body.op);
    await watchTask(client, body.op);
  } catch (err) {
    ui.taskStart.disabled = false;
    say(ui.taskNotice, `The task could not be followed: ${describe(err)}`, true);
  }
}

async function cancelTask() {
  const id = ui.task.dataset.op;
  $("task-cancel").disabled = true;
  const res = await post(`/ops/cancel/${encodeURIComponent(id)}`).catch(() => null);
  if (res && res.ok) {
    say(ui.taskNotice, "Cancelling…");
  } else if (res && res.status === 409) {
    say(ui.taskNotice, "The task had already finished.");
  } else {
    $("task-cancel").disabled = false;
    say(ui.taskNotice, `Cancel was refused (${res ? `HTTP ${res.status}` : "network"}).`, true);
  }
}

async function restartTask() {
  const id = ui.task.dataset.op;
  if (!connected()) {
    say(ui.taskNotice, "Not connected yet; wait a moment.", true);
    return;
  }
  $("task-restart").disabled = true;
  const res = await post(`/ops/restart/${encodeURIComponent(id)}`).catch(() => null);
  const body = res ? await readJSON(res) : {};
  if (!res || !res.ok || typeof body.op !== "string") {
    $("task-restart").disabled = false;
    say(ui.taskNotice, `Restart was refused (${res ? `HTTP ${res.status}` : "network"}).`, true);
    return;
  }
  say(ui.taskNotice, "");
  resetTask(body.op);
  try {
    await watchTask(client, body.op);
  } catch (err) {
    say(ui.taskNotice, `The task could not be followed: ${describe(err)}`, true);
  }
}

if (ui.task) {
  // The server-rendered log starts at its newest lines.
  const log = taskPart("log");
  log.scrollTop = log.scrollHeight;
  // The percent label follows the <progress> the client updates.
  const bar = taskPart("percent");
  new MutationObserver(() => {
    $("task-pct").textContent = `${Math.round(bar.value)} %`;
  }).observe(bar, {attributes: true, attributeFilter: ["value"]});
  $("task-cancel").addEventListener("click", () => cancelTask());
  $("task-restart").addEventListener("click", () => restartTask());
}
if (ui.taskForm) {
  ui.taskForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    startTask();
  });
}

// ---------------------------------------------------------------- forms

if (ui.signinForm) {
  ui.signinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const user = ui.user.value.trim();
    if (!USER_RE.test(user)) {
      notify("User names are 1 to 32 letters, digits, '_', '.' or '-'.", true);
      say(ui.authNotice, "User names are 1 to 32 letters, digits, '_', '.' or '-'.", true);
      ui.user.focus();
      return;
    }
    const password = ui.password ? ui.password.value : "";
    if (password === "") {
      say(ui.authNotice, "");
      signIn(user); // guest: the dev token endpoint, no session
      return;
    }
    login(user, password);
  });
}

if (ui.registerForm) {
  ui.registerForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const user = ui.regUser.value.trim();
    if (!USER_RE.test(user)) {
      say(ui.registerNotice, "User names are 1 to 32 letters, digits, '_', '.' or '-'.", true);
      ui.regUser.focus();
      return;
    }
    register(user, ui.regPassword.value);
  });
}

ui.signoutForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (ACCOUNT) {
    logout();
    return;
  }
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

setRoomLabel(null);
if (ACCOUNT) {
  signIn(ACCOUNT);
} else {
  setStatus("signed-out");
  if (ui.user) ui.user.focus();
}
