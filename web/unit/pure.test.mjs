// Unit tests of livegate.js's pure functions: safeMerge, sanitizeForLog,
// live-view patch splicing and version continuity. Plain node, no
// dependencies, no browser:
//
//   node --test web/unit/

import {test, describe, afterEach} from "node:test";
import assert from "node:assert/strict";

import {safeMerge, sanitizeForLog, applyPatch, checkVersion, PatchQueue, LivegateError} from "../livegate.js";

const polluted = () => [({}).polluted, Object.prototype.polluted, ({}).x, Function.prototype.polluted];

describe("safeMerge", () => {
  afterEach(() => {
    // Leave nothing behind for the next test even if one fails.
    delete Object.prototype.polluted;
    delete Object.prototype.x;
    delete Function.prototype.polluted;
  });

  test("copies own enumerable keys and returns target", () => {
    const target = {a: 1};
    const out = safeMerge(target, {b: 2, c: "x", d: null, e: false});
    assert.equal(out, target);
    assert.deepEqual({...target}, {a: 1, b: 2, c: "x", d: null, e: false});
  });

  test("blocks __proto__ from JSON (prototype pollution)", () => {
    const payload = JSON.parse('{"__proto__": {"polluted": "yes"}, "ok": 1}');
    assert.ok(Object.prototype.hasOwnProperty.call(payload, "__proto__"), "JSON.parse makes an own __proto__ key");
    const target = {};
    safeMerge(target, payload);
    assert.equal(({}).polluted, undefined);
    assert.equal(target.polluted, undefined);
    assert.equal(Object.getPrototypeOf(target), Object.prototype);
    assert.equal(target.ok, 1);
    assert.deepEqual(polluted(), [undefined, undefined, undefined, undefined]);
  });

  test("blocks nested __proto__, constructor and prototype", () => {
    const payload = JSON.parse(`{
      "a": {"__proto__": {"polluted": 1}, "b": {"constructor": {"prototype": {"polluted": 2}}}},
      "constructor": {"prototype": {"polluted": 3}},
      "prototype": {"polluted": 4},
      "list": [{"__proto__": {"polluted": 5}}, [{"constructor": {"prototype": {"x": 6}}}]]
    }`);
    for (const target of [{}, Object.create(null), function f() {}]) {
      safeMerge(target, payload);
      assert.equal(({}).polluted, undefined);
      assert.equal(({}).x, undefined);
      assert.equal(Object.hasOwn(target, "constructor"), false);
      assert.equal(Object.hasOwn(target, "prototype") && target.prototype.polluted !== undefined, false);
      assert.equal(Object.hasOwn(target.a, "__proto__"), false);
      assert.equal(Object.hasOwn(target.a.b, "constructor"), false);
      assert.equal(Object.hasOwn(target.list[0], "__proto__"), false);
      assert.equal(Object.hasOwn(target.list[1][0], "constructor"), false);
    }
    assert.deepEqual(polluted(), [undefined, undefined, undefined, undefined]);
  });

  test("merging into an existing object's constructor cannot reach Object.prototype", () => {
    const target = {};
    safeMerge(target, JSON.parse('{"constructor": {"prototype": {"polluted": true}}}'));
    assert.equal(({}).polluted, undefined);
    assert.equal(target.constructor, Object, "constructor untouched");
  });

  test("creates nested objects with Object.create(null)", () => {
    const target = {};
    safeMerge(target, {a: {b: {c: 1}}, arr: [{d: 1}]});
    assert.equal(Object.getPrototypeOf(target.a), null);
    assert.equal(Object.getPrototypeOf(target.a.b), null);
    assert.equal(Object.getPrototypeOf(target.arr[0]), null);
    assert.ok(Array.isArray(target.arr));
    assert.equal(target.a.b.c, 1);
  });

  test("merges recursively into existing plain objects", () => {
    const inner = {keep: 1, over: 1};
    const target = {inner};
    safeMerge(target, {inner: {over: 2, add: 3}});
    assert.equal(target.inner, inner);
    assert.deepEqual({...inner}, {keep: 1, over: 2, add: 3});
  });

  test("copies, does not alias, source objects and arrays", () => {
    const source = {o: {n: 1}, a: [1, {m: 2}]};
    const target = safeMerge({}, source);
    source.o.n = 9;
    source.a[1].m = 9;
    source.a.push(3);
    assert.equal(target.o.n, 1);
    assert.equal(target.a[1].m, 2);
    assert.equal(target.a.length, 2);
  });

  test("does not run setters on the target", () => {
    let ran = false;
    const target = Object.create({set evil(v) { ran = true; }});
    safeMerge(target, {evil: 1});
    assert.equal(ran, false);
    assert.equal(Object.getOwnPropertyDescriptor(target, "evil").value, 1);
  });

  test("ignores non-enumerable and inherited source keys", () => {
    const source = Object.create({inherited: 1});
    Object.defineProperty(source, "hidden", {value: 1, enumerable: false});
    source.visible = 1;
    assert.deepEqual(Object.keys(safeMerge({}, source)), ["visible"]);
  });

  test("non-object sources copy nothing; bad targets throw", () => {
    assert.deepEqual(safeMerge({}, null), {});
    assert.deepEqual(safeMerge({}, "str"), {});
    assert.deepEqual(safeMerge({}, 42), {});
    assert.throws(() => safeMerge(null, {}), TypeError);
    assert.throws(() => safeMerge("x", {}), TypeError);
  });

  test("refuses absurd nesting", () => {
    let deep = {};
    const root = deep;
    for (let i = 0; i < 200; i++) deep = deep.n = {};
    assert.throws(() => safeMerge({}, root), RangeError);
  });
});

describe("sanitizeForLog", () => {
  test("keeps ordinary text", () => {
    assert.equal(sanitizeForLog("hello, world"), "hello, world");
    assert.equal(sanitizeForLog("naïve café 😀"), "naïve café 😀");
  });

  test("strips ANSI escape sequences", () => {
    assert.equal(sanitizeForLog("\u001b[31mred\u001b[0m plain"), "red plain");
    assert.equal(sanitizeForLog("\u001b[1;32;40mbold\u001b[K"), "bold");
    assert.equal(sanitizeForLog("a\u001b]0;evil title\u0007b"), "ab"); // OSC, BEL-terminated
    assert.equal(sanitizeForLog("a\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\b"), "alinkb"); // OSC 8 hyperlink
    assert.equal(sanitizeForLog("a\u009b2Jb"), "ab"); // 8-bit CSI
    assert.equal(sanitizeForLog("a\u001bcb"), "ab"); // RIS
  });

  test("strips control characters; line breaks become spaces", () => {
    assert.equal(sanitizeForLog("line1\nline2\r\nline3"), "line1 line2 line3");
    assert.equal(sanitizeForLog("a\u0000b\u0007c\u0008d\u007fe\u0085f"), "abcde f");
    assert.equal(sanitizeForLog("tab\there"), "tab here");
    assert.equal(sanitizeForLog("ls\u2028ps\u2029end"), "ls ps end");
    // A forged log line cannot start on its own line.
    assert.doesNotMatch(sanitizeForLog("ok\n[ERROR] admin logged in"), /\n/);
  });

  test("strips bidi overrides, embeddings, isolates and marks", () => {
    const trojan = "access\u202e\u2066// check\u2069\u2066 admin";
    assert.equal(sanitizeForLog(trojan), "access// check admin");
    for (const c of ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]) {
      assert.equal(sanitizeForLog(`a${c}b`), "ab", `U+${c.codePointAt(0).toString(16)}`);
    }
  });

  test("replaces lone surrogates", () => {
    assert.equal(sanitizeForLog("a\ud83db"), "a\ufffdb");
    assert.equal(sanitizeForLog("a\ude00b"), "a\ufffdb");
    assert.equal(sanitizeForLog("\ud83d\ude00"), "😀");
  });

  test("truncates to maxLength code points without splitting a pair", () => {
    assert.equal(sanitizeForLog("x".repeat(500)), "x".repeat(200) + "…");
    assert.equal(sanitizeForLog("abcdef", 3), "abc…");
    assert.equal(sanitizeForLog("abc", 3), "abc");
    assert.equal(sanitizeForLog("😀😀😀😀", 2), "😀😀…");
    assert.equal(sanitizeForLog("abc", 0), "abc", "invalid max falls back to the default");
  });

  test("formats non-strings", () => {
    assert.equal(sanitizeForLog(undefined), "undefined");
    assert.equal(sanitizeForLog(null), "null");
    assert.equal(sanitizeForLog(42), "42");
    assert.equal(sanitizeForLog({a: "x\ny"}), '{"a":"x\\ny"}');
    assert.equal(sanitizeForLog(new LivegateError("forbidden", "no\u001b[2J")), "LivegateError(forbidden): no");
    assert.equal(sanitizeForLog(new TypeError("bad")), "TypeError: bad");
    const cyclic = {};
    cyclic.self = cyclic;
    assert.equal(sanitizeForLog(cyclic), "[object Object]");
    assert.equal(sanitizeForLog(10n), "10");
  });
});

describe("applyPatch", () => {
  test("replaces [start, end) with insert", () => {
    assert.equal(applyPatch("<p>1</p>", {start: 3, end: 4, insert: "2"}), "<p>2</p>");
    assert.equal(applyPatch("abc", {start: 0, end: 0, insert: "x"}), "xabc");
    assert.equal(applyPatch("abc", {start: 3, end: 3, insert: "x"}), "abcx");
    assert.equal(applyPatch("abc", {start: 0, end: 3, insert: ""}), "");
    assert.equal(applyPatch("", {start: 0, end: 0, insert: "<b>hi</b>"}), "<b>hi</b>");
  });

  test("offsets are UTF-16 code units (emoji count 2)", () => {
    const html = "<p>😀 hi</p>";
    // "<p>" is 3 units, the emoji 2: " hi" starts at 5.
    assert.equal(applyPatch(html, {start: 5, end: 8, insert: " yo"}), "<p>😀 yo</p>");
    assert.equal(applyPatch(html, {start: 3, end: 5, insert: "🎉"}), "<p>🎉 hi</p>");
    assert.equal(applyPatch("a👩‍👩‍👧b", {start: 1, end: 9, insert: "x"}), "axb", "ZWJ family is 8 units");
    assert.equal(applyPatch("é", {start: 0, end: 1, insert: "e"}), "e", "BMP characters are 1 unit");
    // The same splice counted in code points would cut the emoji in half.
    assert.throws(() => applyPatch(html, {start: 4, end: 7, insert: ""}), {code: "protocol"});
  });

  test("a splice between the halves of a surrogate pair is refused", () => {
    assert.throws(() => applyPatch("a😀b", {start: 2, end: 2, insert: "x"}), {code: "protocol", message: /surrogate/});
    assert.throws(() => applyPatch("a😀b", {start: 1, end: 2, insert: ""}), {code: "protocol"});
    assert.equal(applyPatch("a😀b", {start: 1, end: 3, insert: ""}), "ab");
  });

  test("malformed patches throw LivegateError protocol", () => {
    for (const patch of [
      null, "x", [], {}, {start: 0, end: 0},
      {start: -1, end: 0, insert: ""},
      {start: 0, end: 4, insert: ""},
      {start: 2, end: 1, insert: ""},
      {start: 0.5, end: 1, insert: ""},
      {start: "0", end: 1, insert: ""},
      {start: 0, end: 1, insert: 5},
      {start: 0, end: Number.MAX_SAFE_INTEGER + 2, insert: ""},
    ]) {
      assert.throws(() => applyPatch("abc", patch), (err) => err instanceof LivegateError && err.code === "protocol", JSON.stringify(patch));
    }
    assert.throws(() => applyPatch(null, {start: 0, end: 0, insert: ""}), TypeError);
  });
});

describe("checkVersion", () => {
  test("next, duplicate and gap", () => {
    assert.equal(checkVersion(4, 5), "apply");
    assert.equal(checkVersion(0, 1), "apply");
    assert.equal(checkVersion(5, 5), "duplicate");
    assert.equal(checkVersion(5, 3), "duplicate");
    assert.equal(checkVersion(5, 7), "gap");
    assert.equal(checkVersion(5, 1000), "gap");
  });

  test("non-integers are a protocol error", () => {
    for (const [a, b] of [[1, "2"], [1, 2.5], [1, null], [NaN, 1], [1, undefined]]) {
      assert.throws(() => checkVersion(a, b), {code: "protocol"});
    }
  });
});

describe("PatchQueue", () => {
  const p = (version, start, end, insert) => ({version, start, end, insert});

  test("applies patches in version order", () => {
    const q = new PatchQueue("<p>0</p>", 7);
    assert.equal(q.offer(p(8, 3, 4, "1")), "applied");
    assert.equal(q.offer(p(9, 3, 4, "2")), "applied");
    assert.equal(q.html, "<p>2</p>");
    assert.equal(q.version, 9);
  });

  test("ignores duplicates", () => {
    const q = new PatchQueue("ab", 1);
    assert.equal(q.offer(p(2, 0, 1, "x")), "applied");
    assert.equal(q.offer(p(2, 0, 1, "y")), "duplicate");
    assert.equal(q.offer(p(1, 0, 0, "z")), "duplicate");
    assert.equal(q.html, "xb");
  });

  test("holds a patch that overtook the one before it", () => {
    const q = new PatchQueue("😀", 0);
    assert.equal(q.offer(p(2, 4, 4, "c")), "buffered"); // needs version 1's result
    assert.equal(q.pending, 1);
    assert.equal(q.highest, 2);
    assert.equal(q.html, "😀");
    assert.equal(q.offer(p(1, 2, 2, "ab")), "applied");
    assert.equal(q.html, "😀abc");
    assert.equal(q.version, 2);
    assert.equal(q.pending, 0);
  });

  test("reports a gap when too many patches wait", () => {
    const q = new PatchQueue("", 0, {maxPending: 2});
    assert.equal(q.offer(p(3, 0, 0, "")), "buffered");
    assert.equal(q.offer(p(4, 0, 0, "")), "buffered");
    assert.equal(q.offer(p(4, 0, 0, "")), "buffered", "the same version again is not counted twice");
    assert.equal(q.offer(p(5, 0, 0, "")), "gap");
    const strict = new PatchQueue("", 0, {maxPending: 0});
    assert.equal(strict.offer(p(2, 0, 0, "")), "gap");
  });

  test("a malformed patch throws and leaves the last good state", () => {
    const q = new PatchQueue("abc", 0);
    assert.throws(() => q.offer(p(1, 0, 10, "")), {code: "protocol"});
    assert.equal(q.html, "abc");
    assert.equal(q.version, 0);
    assert.throws(() => q.offer({start: 0, end: 0, insert: ""}), {code: "protocol"}, "no version");
    assert.throws(() => q.offer(null), {code: "protocol"});
  });

  test("constructor validates", () => {
    assert.throws(() => new PatchQueue(null, 0), TypeError);
    assert.throws(() => new PatchQueue("", -1), TypeError);
    assert.throws(() => new PatchQueue("", 1.5), TypeError);
  });
});
