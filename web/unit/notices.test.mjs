// The client's handling of the server's notice pushes (resubscribe, join,
// leave) and of presence, against a scripted in-process WebSocket.

import {test} from "node:test";
import assert from "node:assert/strict";
import {Client} from "../livegate.js";

const tick = () => new Promise((r) => setTimeout(r, 0));

// FakeServer records frames the client sends and answers them by script.
function fakeWebSocket(server) {
  return class {
    constructor(url, protocol) {
      this.protocol = protocol;
      this.readyState = 0;
      server.ws = this;
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(text) {
      const cmd = JSON.parse(text);
      server.sent.push(cmd);
      const result = server.answer(cmd);
      if (result !== undefined) setTimeout(() => this.push({id: cmd.id, ...result}), 0);
    }
    push(frame) { this.onmessage && this.onmessage({data: JSON.stringify(frame)}); }
    close() { this.readyState = 3; }
  };
}

async function connected(answer) {
  const server = {sent: [], answer};
  const client = new Client("ws://test/ws", {getToken: () => "t", WebSocket: fakeWebSocket(server)});
  await client.connect();
  return {client, server};
}

function standardAnswers(overrides = {}) {
  let epoch = "e1";
  return {
    setEpoch(e) { epoch = e; },
    answer(cmd) {
      if (overrides[cmd.method]) return overrides[cmd.method](cmd, epoch);
      switch (cmd.method) {
        case "connect": return {result: {client: "c1", user: "alice", expires: Math.floor(Date.now() / 1000) + 3600, ping: 25}};
        case "subscribe":
          if (cmd.params.since) return {result: {offset: 5, epoch, recovered: cmd.params.since.epoch === epoch}};
          return {result: {offset: 2, epoch}};
        case "unsubscribe": return {result: {}};
      }
      return {error: {code: "bad_request", message: "bad request"}};
    },
  };
}

test("a resubscribe notice resubscribes from the last position", async () => {
  const a = standardAnswers();
  const {client, server} = await connected(a.answer);
  const got = [];
  const resets = [];
  await client.subscribe("room:a", (data, meta) => got.push([data, meta.offset]), {onReset: (r) => resets.push(r)});
  server.ws.push({push: {channel: "room:a", offset: 3, epoch: "e1", data: "x"}});
  assert.deepEqual(got, [["x", 3]]);

  server.sent.length = 0;
  server.ws.push({push: {channel: "room:a", resubscribe: true}});
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(server.sent.map((c) => c.method), ["unsubscribe", "subscribe"]);
  assert.deepEqual(server.sent[1].params.since, {offset: 3, epoch: "e1"});
  assert.equal(resets.length, 0, "complete recovery: no reset");
  assert.equal(got.length, 1, "the notice is not delivered as a publication");

  // After the epoch changed the resubscribe is not recovered: reset.
  a.setEpoch("e2");
  server.ws.push({push: {channel: "room:a", resubscribe: true}});
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(resets.length, 1);
  assert.equal(resets[0].recovered, false);
  client.close();
});

test("join and leave notices reach onJoinLeave, never onPush", async () => {
  const a = standardAnswers();
  const {client, server} = await connected(a.answer);
  const events = [];
  const pushes = [];
  await client.subscribe("lobby:main", (d) => pushes.push(d), {onJoinLeave: (e) => events.push(e)});
  server.ws.push({push: {channel: "lobby:main", join: {conn: "c2", user: "bob"}}});
  server.ws.push({push: {channel: "lobby:main", leave: {conn: "c2", user: "bob"}}});
  server.ws.push({push: {channel: "lobby:main", join: {conn: 1, user: "bob"}}}); // malformed: ignored
  assert.deepEqual(events, [{join: true, conn: "c2", user: "bob"}, {join: false, conn: "c2", user: "bob"}]);
  assert.deepEqual(pushes, []);
  client.close();
});

test("presence resolves with the clients and rejects refusals", async () => {
  const a = standardAnswers({
    presence: (cmd) => cmd.params.channel === "lobby:main"
      ? {result: {clients: [{conn: "c1", user: "alice"}, {conn: "c2", user: "bob", extra: 1}, {conn: 3}]}}
      : {error: {code: "forbidden", message: "forbidden"}},
  });
  const {client} = await connected(a.answer);
  assert.deepEqual(await client.presence("lobby:main"), [{conn: "c1", user: "alice"}, {conn: "c2", user: "bob"}]);
  await assert.rejects(client.presence("room:other"), (err) => err.code === "forbidden");
  client.close();
});
