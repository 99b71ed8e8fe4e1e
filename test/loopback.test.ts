import assert from "node:assert/strict";
import { test } from "node:test";
import { isLoopbackAddress, isLoopbackHost } from "../src/loopback.js";
import { isLoopback as probeIsLoopback } from "../src/probe/address.js";
import { isLoopback as aclIsLoopback, canonicalHost } from "../src/proxy/acl.js";

// Nothing here is dialled: the rule is checked on text only.
const loopback = [
  "127.0.0.1",
  "127.255.255.254",
  "::1",
  "[::1]",
  "0:0:0:0:0:0:0:1",
  "::ffff:127.0.0.1",
  "::ffff:7f00:1",
];
// Spellings the kernel's inet_aton would read as other addresses, or not addresses at all.
const notLoopback = [
  "0127.0.0.1", // 87.0.0.1
  "0x7f000001",
  "2130706433",
  "127.1",
  "128.0.0.1",
  "126.255.255.255",
  "::2",
  "::ffff:128.0.0.1",
  "0.0.0.0",
  "::",
  "localhost.",
  "127.0.0.1.example",
  "",
];

test("one loopback rule: literal 127.0.0.0/8 and ::1 in any standard spelling; nothing else", () => {
  for (const a of loopback) assert.equal(isLoopbackAddress(a), true, a);
  for (const a of [...notLoopback, "localhost"]) assert.equal(isLoopbackAddress(a), false, a);
  assert.equal(isLoopbackHost("localhost"), true);
  assert.equal(isLoopbackHost("LOCALHOST"), true);
  for (const a of notLoopback) assert.equal(isLoopbackHost(a), false, a);
});

test("the probe and the proxy's ACL answer with the same rule", () => {
  for (const a of [...loopback, ...notLoopback, "localhost"]) {
    assert.equal(probeIsLoopback(a), isLoopbackHost(a), `probe: ${a}`);
  }
  // The ACL reads inet_aton spellings as the kernel does first, then applies the rule:
  // 0x7f000001 is 127.0.0.1 to it, 0127.0.0.1 is 87.0.0.1.
  const acl = (h: string) => {
    const c = canonicalHost(h);
    return c !== null && aclIsLoopback(c);
  };
  assert.equal(acl("0x7f000001"), true);
  assert.equal(acl("127.1"), true);
  assert.equal(acl("0127.0.0.1"), false);
  for (const a of ["127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost", "128.0.0.1", "::2"]) {
    assert.equal(acl(a), isLoopbackHost(a), `acl: ${a}`);
  }
});
