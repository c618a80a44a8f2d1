// Importing livegate.js must not touch browser globals: it runs in node
// (these tests, server-side rendering, bundlers) and must not load DOMPurify
// or idiomorph until a page uses live views or operations. node --test runs
// each file in its own process, so the traps below affect this file only.

import {test} from "node:test";
import assert from "node:assert/strict";

test("module load touches no window, document or DOM global", async () => {
  const touched = [];
  for (const name of ["window", "document", "self", "navigator", "location", "customElements", "HTMLElement", "Node", "DOMParser"]) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        touched.push(name);
        throw new Error(`livegate.js touched ${name} at module load`);
      },
    });
  }
  const mod = await import("../livegate.js");
  assert.deepEqual(touched, []);
  assert.equal(typeof mod.Client, "function");
  assert.equal(typeof mod.safeMerge, "function");
  assert.equal(typeof mod.sanitizeForLog, "function");

  // Constructing a client (with an injected WebSocket) does not either.
  const client = new mod.Client("ws://127.0.0.1:1/ws", {getToken: () => "t", WebSocket: class {}});
  assert.equal(client.state, "closed");
  assert.deepEqual(touched, []);
});
