// A tiny chat speaking livegate's wire protocol (docs/protocol.md) directly.
const $ = (id) => document.getElementById(id);
let ws;
let nextID = 1;
const pending = new Map();

function call(method, params) {
  const id = nextID++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function show(msg) {
  const li = document.createElement("li");
  li.textContent = `${msg.user}: ${msg.text}`; // text, never HTML
  $("messages").append(li);
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const { wsURL } = await (await fetch("/config.json")).json();
  const res = await fetch("/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: $("name").value }),
  });
  if (!res.ok) {
    $("status").textContent = "sign-in refused";
    return;
  }
  const { token } = await res.json();
  ws = new WebSocket(wsURL, "livegate.v1");
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.push && f.push.channel === "room:lobby") show(f.push.data);
    else if (pending.has(f.id)) {
      const p = pending.get(f.id);
      pending.delete(f.id);
      f.error ? p.reject(new Error(f.error.code)) : p.resolve(f.result);
    }
  };
  ws.onclose = (ev) => { $("status").textContent = `disconnected (${ev.code})`; };
  ws.onopen = async () => {
    try {
      // The backend subscribes the connection to room:lobby at connect.
      const r = await call("connect", { token });
      $("status").textContent = `connected as ${r.user}`;
      $("login").hidden = true;
      $("send").hidden = false;
    } catch (err) {
      $("status").textContent = `connect failed: ${err.message}`;
    }
  };
});

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await call("event", { name: "send", payload: { text: $("text").value } });
    $("text").value = "";
  } catch (err) {
    $("status").textContent = `not sent: ${err.message}`;
  }
});
