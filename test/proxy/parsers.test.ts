import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { Acl, canonicalAddress, canonicalHost, parseRule } from "../../src/proxy/acl.js";
import { parseConfig } from "../../src/proxy/config.js";
import { Credentials, parseUsersFile } from "../../src/proxy/credentials.js";
import {
  encodeForwardHead,
  parseBasicCredentials,
  parseHttpHead,
} from "../../src/proxy/http-parser.js";
import {
  encodeReply,
  parseGreeting,
  parseRequest,
  parseUserPass,
} from "../../src/proxy/socks5-parser.js";

test("canonical addresses: every inet_aton and IPv6 spelling of one address is one string", () => {
  for (const s of [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f000001",
    "0X7F.1",
    "2130706433",
    "0177.0.0.1",
    "017700000001",
    "127.0.0.1.",
    "::ffff:127.0.0.1",
    "::FFFF:7F00:1",
    "[::ffff:127.0.0.1]",
  ]) {
    assert.equal(canonicalAddress(s), "127.0.0.1", s);
  }
  for (const s of ["::1", "0:0:0:0:0:0:0:1", "0000::0001", "[::1]"])
    assert.equal(canonicalAddress(s), "::1", s);
  assert.equal(canonicalAddress("2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  assert.equal(canonicalAddress("fe80::1%eth0"), null, "zone ids are refused");
  for (const bad of ["256.1.1.1", "1.2.3.4.5", "08.1.1.1", "1:2:3:4:5:6:7:8:9", "::1::", "0x1g"]) {
    const c = canonicalHost(bad);
    assert.ok(c === null || c.kind === "name", bad);
    assert.equal(canonicalAddress(bad), null, bad);
  }
  assert.deepEqual(canonicalHost("Example.COM."), { kind: "name", name: "example.com" });
  assert.equal(canonicalHost("a".repeat(64)), null, "label too long");
  assert.equal(canonicalHost(`${"a.".repeat(127)}a`), null, "name too long");
  assert.equal(canonicalHost("bad name"), null);
});

test("ACL: CIDR blocks, names, suffixes, deny wins, resolved addresses checked", () => {
  // Rules over loopback blocks only: parsing needs no other address.
  const acl = new Acl(
    ["127.0.0.0/9", "*.example.com", "::1"],
    ["127.9.0.0/16", "evil.example.com"],
  );
  const v = (h: string) => acl.checkRequested(canonicalHost(h) ?? { kind: "name", name: "" });
  assert.equal(v("127.1.2.3").allowed, true);
  assert.equal(v("0177.1.2.3").allowed, true, "octal 0177 is 127");
  assert.equal(v("127.9.1.1").allowed, false);
  assert.equal(v("127.200.0.1").allowed, false, "outside 127.0.0.0/9");
  assert.equal(v("evil.example.com.").allowed, false);
  assert.equal(v("EVIL.example.com").allowed, false);
  assert.equal(v("www.example.com").allowed, true);
  const name = canonicalHost("www.example.com");
  const addr = canonicalHost("127.9.3.3");
  assert.ok(name && addr);
  assert.equal(
    acl.checkResolved(name, addr).allowed,
    false,
    "a name resolving into a denied block",
  );
  assert.throws(() => parseRule("127.0.0.0/33"), /prefix length/);
  assert.throws(() => parseRule("*.1.2"), /acl rule/);
  assert.equal(new Acl(["*"], []).checkRequested({ kind: "name", name: "x" }).allowed, true);
});

test("SOCKS5 parsers: greeting, RFC 1929 auth, requests of each address type; replies carry BND", () => {
  assert.deepEqual(parseGreeting(Buffer.from([5, 2, 0, 2])), {
    kind: "ok",
    value: { methods: [0, 2] },
    consumed: 4,
  });
  assert.equal(parseGreeting(Buffer.from([4, 1, 0])).kind, "error");
  assert.equal(parseGreeting(Buffer.from([5, 0])).kind, "error");
  const up = parseUserPass(Buffer.from([1, 1, 0x61, 2, 0x70, 0x77]));
  assert.deepEqual(up, { kind: "ok", value: { username: "a", password: "pw" }, consumed: 6 });
  const v4 = parseRequest(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]));
  assert.deepEqual(v4, {
    kind: "ok",
    value: { command: 1, addressType: "ipv4", host: "127.0.0.1", port: 8080 },
    consumed: 10,
  });
  const v6 = parseRequest(Buffer.from([5, 1, 0, 4, ...new Array(15).fill(0), 1, 0, 80]));
  assert.equal(v6.kind === "ok" && v6.value.host, "::1");
  const name = Buffer.from("a".repeat(255));
  const dom = parseRequest(Buffer.from([5, 1, 0, 3, 255, ...name, 0, 80]));
  assert.equal(dom.kind === "ok" && dom.value.host.length, 255);
  assert.deepEqual(
    [...encodeReply(0, { host: "::1", port: 1 })],
    [5, 0, 0, 4, ...new Array(15).fill(0), 1, 0, 1],
  );
  assert.deepEqual(
    [...encodeReply(0, { host: "::ffff:127.0.0.1", port: 2 })],
    [5, 0, 0, 1, 127, 0, 0, 1, 0, 2],
  );
  assert.deepEqual([...encodeReply(5)], [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(
    [...encodeReply(0, { host: "127.1.255.254", port: 65535 })],
    [5, 0, 0, 1, 127, 1, 255, 254, 255, 255],
  );
  // Not a dotted quad Node would print: the general path, or no address.
  for (const odd of ["127.0.0.256", "127.0.0", "127.0.0.1.", "127..0.1", "1270.0.0.1", ""])
    assert.deepEqual([...encodeReply(0, { host: odd, port: 7 }).subarray(0, 4)], [5, 0, 0, 1], odd);
  assert.deepEqual(
    [...encodeReply(0, { host: "127.0.0.256", port: 7 })],
    [5, 0, 0, 1, 0, 0, 0, 0, 0, 0],
  );
});

test("HTTP parser: CONNECT authority-form, absolute URIs, strict framing", () => {
  const c = parseHttpHead(
    Buffer.from(
      "CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic YTpi\r\n\r\nrest",
    ),
  );
  assert.equal(c.kind, "ok");
  if (c.kind === "ok") {
    assert.deepEqual([c.value.kind, c.value.host, c.value.port], ["connect", "::1", 443]);
    assert.deepEqual(parseBasicCredentials(c.value.proxyAuthorization), {
      username: "a",
      password: "b",
    });
    assert.equal(
      c.consumed,
      Buffer.byteLength(
        c.kind === "ok"
          ? "CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic YTpi\r\n\r\n"
          : "",
      ),
    );
  }
  const f = parseHttpHead(
    Buffer.from(
      "GET http://Example.com:8080?q=1 HTTP/1.1\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
    ),
  );
  assert.equal(f.kind, "ok");
  if (f.kind === "ok") {
    assert.equal(f.value.path, "/?q=1");
    assert.equal(
      encodeForwardHead(f.value).toString(),
      "GET /?q=1 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    );
  }
  const status = (text: string) => {
    const r = parseHttpHead(Buffer.from(text), 1024);
    return r.kind === "error" ? r.error.status : r.kind;
  };
  assert.equal(
    status("CONNECT a:1 HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    400,
  );
  assert.equal(status("CONNECT a:1 HTTP/1.1\r\n folded\r\n\r\n"), 400);
  assert.equal(status("CONNECT a:1 HTTP/2.0\r\n\r\n"), 505);
  assert.equal(status("CONNECT user@a:1 HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET https://a/ HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status(`CONNECT ${"a".repeat(255)}:1 HTTP/1.1\r\n\r\n`), "ok");
  assert.equal(status(`CONNECT ${"a".repeat(256)}:1 HTTP/1.1\r\n\r\n`), 400);
  assert.equal(status(`CONNECT a:1 HTTP/1.1\r\nX: ${"b".repeat(1100)}`), 431);
  assert.equal(status("\x00\x01garbage"), 400);
  assert.equal(status("CONNECT a:1 HTTP/1.1\r\n"), "need-more");
});

test("credentials: constant-time checks, and never enumerable, serialisable or printable", () => {
  const creds = new Credentials([{ username: "alice", password: "s3cret-pw" }]);
  assert.equal(creds.verify("alice", "s3cret-pw"), true);
  assert.equal(creds.verify("alice", "s3cret-px"), false);
  assert.equal(creds.verify("mallory", "s3cret-pw"), false);
  assert.deepEqual(Object.keys(creds), []);
  assert.equal(JSON.stringify(creds), '{"users":1}');
  assert.doesNotMatch(inspect(creds, { showHidden: true, depth: 5 }), /s3cret|alice/);
  assert.throws(
    () =>
      new Credentials([
        { username: "a", password: "leaked-pw" },
        { username: "a", password: "x" },
      ]),
    (e: Error) => !e.message.includes("leaked-pw"),
  );
  assert.throws(
    () => parseUsersFile("ok:pw\nno-colon-secret\n"),
    (e: Error) => /line 2/.test(e.message) && !e.message.includes("secret"),
  );
});

test("config file: unknown keys and bad values are one-line errors naming the field", () => {
  assert.throws(
    () => parseConfig({ limts: {} }, "g.json"),
    /^.*g\.json: \(top level\): Unrecognized key: "limts"$/,
  );
  assert.throws(
    () => parseConfig({ limits: { policy: "fifo" } }, "g.json"),
    /g\.json: limits\.policy: /,
  );
  assert.throws(
    () => parseConfig({ identities: { "user:a": { maxInFlight: 0 } } }, "g.json"),
    /identities\.user:a\.maxInFlight/,
  );
  const ok = parseConfig({
    port: 0,
    identity: "user",
    limits: { profile: "winxp-sp2", maxInFlight: "unlimited" },
    deny: ["127.9.0.0/16"],
  });
  assert.equal(ok.identity, "user");
});
