// Batched messages: the client asks for them at connect and splits every
// message on "\n" into frames, against a scripted in-process WebSocket.

import {test} from "node:test";
import assert from "node:assert/strict";
import {Client, splitFrames} from "../livegate.js";

const tick = () => new Promise((r) => setTimeout(r, 0));

function fakeWebSocket(server) {
  return class {
    constructor() {
      this.readyState = 0;
      this.protocol = "livegate.v1";
      server.ws = this;
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(text) {
      const cmd = JSON.parse(text);
      server.sent.push(cmd);
      const result = server.answer(cmd);
      if (result !== undefined) setTimeout(() => this.message(JSON.stringify({id: cmd.id, ...result})), 0);
    }
    message(data) { this.onmessage && this.onmessage({data}); }
    close() { this.readyState = 3; }
  };
}

function answer(cmd) {
  switch (cmd.method) {
    case "connect": return {result: {client: "c1", user: "alice", expires: Math.floor(Date.now() / 1000) + 3600, ping: 25, batch: true}};
    case "subscribe": return {result: {offset: 0, epoch: "e1"}};
    case "event": return undefined; // answered by the test
  }
  return {error: {code: "bad_request", message: "bad request"}};
}

test("splitFrames splits on newlines and skips empty pieces", () => {
  assert.deepEqual(splitFrames('{"a":1}'), ['{"a":1}']);
  assert.deepEqual(splitFrames('{"a":1}\n{"b":2}\n{"c":3}'), ['{"a":1}', '{"b":2}', '{"c":3}']);
  assert.deepEqual(splitFrames('{"a":1}\n\n{"b":2}\n'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(splitFrames(""), []);
});

test("connect asks for batches and every frame of a batched message is handled, in order", async () => {
  const server = {sent: [], answer};
  const client = new Client("ws://test/ws", {getToken: () => "t", WebSocket: fakeWebSocket(server)});
  const res = await client.connect();
  assert.equal(server.sent[0].method, "connect");
  assert.equal(server.sent[0].params.batch, true, "connect params carry batch: true");
  assert.equal(server.sent[0].params.token, "t");
  assert.equal(res.batch, true);

  const got = [];
  await client.subscribe("room:a", (data, meta) => got.push([data.n, meta.offset]));
  const push = (n) => JSON.stringify({push: {channel: "room:a", offset: n, epoch: "e1", data: {n}}});
  server.ws.message([push(1), push(2), push(3)].join("\n"));
  assert.deepEqual(got, [[1, 1], [2, 2], [3, 3]]);

  // A reply and a push in one message: the call resolves, the push arrives.
  const call = client.call("echo", {});
  await tick();
  const id = server.sent.at(-1).id;
  server.ws.message(JSON.stringify({id, result: {ok: true}}) + "\n" + push(4));
  assert.deepEqual(await call, {ok: true});
  await tick(); // frames behind a reply follow once its awaiters ran
  assert.deepEqual(got.at(-1), [4, 4]);

  // A frame that is not JSON is skipped; the others still count.
  server.ws.message(push(5) + "\nnot json\n" + push(6));
  assert.deepEqual(got.slice(-2), [[5, 5], [6, 6]]);
  client.close();
});

test("a push batched right behind its subscribe reply reaches the new subscription", async () => {
  const server = {sent: [], answer: (cmd) => (cmd.method === "subscribe" ? undefined : answer(cmd))};
  const client = new Client("ws://test/ws", {getToken: () => "t", WebSocket: fakeWebSocket(server)});
  await client.connect();
  const got = [];
  const subscribed = client.subscribe("room:b", (data, meta) => got.push([data.n, meta.offset]));
  await tick();
  const sub = server.sent.at(-1);
  assert.equal(sub.method, "subscribe");
  const push = (n) => JSON.stringify({push: {channel: "room:b", offset: n, epoch: "e1", data: {n}}});
  // Reply, two pushes, then (another message) a third push.
  server.ws.message([JSON.stringify({id: sub.id, result: {offset: 0, epoch: "e1"}}), push(1), push(2)].join("\n"));
  server.ws.message(push(3));
  await subscribed;
  for (let i = 0; i < 10 && got.length < 3; i++) await tick();
  assert.deepEqual(got, [[1, 1], [2, 2], [3, 3]], "pushes lost or out of order");
  client.close();
});
