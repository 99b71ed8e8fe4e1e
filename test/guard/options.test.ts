import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type http from "node:http";
import { test } from "node:test";
import fc from "fast-check";
import { GuardedAgent, GuardedHttpsAgent } from "../../src/guard/adapters/http.js";
import { guardedConnect } from "../../src/guard/adapters/undici.js";
import { Backoff, backoffKeys } from "../../src/guard/backoff.js";
import { Guard, guardOptionKeys, preflightOptionKeys } from "../../src/guard/guard.js";
import { ReconnectingLink } from "../../src/guard/link.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { FakeClock } from "../helpers/fake-clock.js";

let seq = 0;
const budget = () => `options-${seq++}`;

const invalid = (pattern: RegExp) => (error: unknown) => {
  const e = error as { code?: string; message?: string };
  assert.equal(e.code, "SYNLIMIT_INVALID_OPTION");
  assert.match(e.message ?? "", pattern);
  return true;
};

test("the tester's misplaced keys are refused, naming the key and the intended one", () => {
  assert.throws(
    () => new Guard({ udpEchoPort: 39009 } as never),
    invalid(/^option udpEchoPort is not a Guard option; did you mean preflight\.udpEchoPort\?$/),
  );
  assert.throws(
    () => guardedConnect({ conectTimeoutMs: 5 } as never),
    invalid(/option conectTimeoutMs is not a Guard option; did you mean connectTimeoutMs\?/),
  );
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, udpEchoprt: 7007 } as never),
    invalid(/option udpEchoprt is not a ReconnectingLink option; did you mean udpEchoPort\?/),
  );
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, budget: "x" } as never),
    invalid(/did you mean guard\.budget\?/),
  );
  assert.throws(
    () => new Guard({ preflight: { udpEchoprt: 7 } as never }),
    invalid(
      /option preflight\.udpEchoprt is not a Guard preflight option; did you mean preflight\.udpEchoPort\?/,
    ),
  );
  assert.throws(
    () => new Guard({ backoff: { initalMs: 7 } as never }),
    invalid(/option backoff\.initalMs .*did you mean backoff\.initialMs\?/),
  );
  assert.throws(() => new Backoff({ max: 7 } as never), invalid(/backoff\.max is not/));
  assert.throws(
    () => new Guard({ yieldToHost: { maxWait: 7 } as never }),
    invalid(/yieldToHost\.maxWait is not .*did you mean yieldToHost\.maxWaitMs\?/),
  );
  assert.throws(() => new GuardedAgent({ udpEchoPort: 7 } as never), invalid(/udpEchoPort/));
  assert.throws(() => new GuardedHttpsAgent({ zzz: 1 } as never), invalid(/option zzz .*known:/));
});

test("the adapters' option errors suggest as Guard's, and name their own second argument", () => {
  // Before: "known: budget, …" for the misspelt misplaced key, from every entry point.
  for (const make of [
    (o: object) => new Guard(o as never),
    (o: object) => guardedConnect(o as never),
    (o: object) => new GuardedAgent(o as never),
    (o: object) => new GuardedHttpsAgent(o as never),
  ]) {
    assert.throws(
      () => make({ udpEchoPrt: 7 }),
      invalid(/^option udpEchoPrt is not a Guard option; did you mean preflight\.udpEchoPort\?$/),
    );
  }
  // undici connector options in the guard's slot: named where they belong.
  assert.throws(
    () => guardedConnect({ timeout: 10_000 } as never),
    invalid(/option timeout .*guardedConnect's second argument \(undici connector options\)/),
  );
  assert.throws(
    () => new GuardedAgent({ keepAlive: true } as never),
    invalid(/option keepAlive .*second argument \(http\.Agent options\)/),
  );
});

test("a preflight with neither udpEchoPort nor check is refused: it would mean no preflight", () => {
  // Before: accepted, and a connect to a dead peer made a TCP attempt.
  for (const preflight of [{}, { timeoutMs: 100 }, { when: "always" as const }]) {
    assert.throws(
      () => new Guard({ budget: budget(), preflight }),
      invalid(/^option preflight needs udpEchoPort or check/),
    );
  }
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, preflight: { timeoutMs: 100 } }),
    invalid(/option preflight needs udpEchoPort or check/),
  );
  // Given beside it, the link's own udpEchoPort completes the preflight.
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: 1,
    udpEchoPort: 7,
    preflight: { timeoutMs: 100 },
    guard: { budget: budget() },
  });
  void link.close();
});

test("guard.connect() refuses unknown keys before any attempt", async () => {
  const guard = new Guard({ budget: budget() });
  await assert.rejects(
    guard.connect({ host: "127.0.0.1", port: 1, connectTimeoutMs: 5 } as never),
    invalid(/did you mean timeoutMs\?/),
  );
});

test("options passed through to node:http and undici stay theirs: not checked by the guard", () => {
  const agent = new GuardedAgent({ budget: budget() }, {
    keepAlive: true,
    timeout: 5,
    someFutureNodeOption: 1,
  } as http.AgentOptions);
  agent.destroy();
  const httpsAgent = new GuardedHttpsAgent(
    { budget: budget() },
    { keepAlive: true, servername: "x" },
  );
  httpsAgent.destroy();
  assert.equal(
    typeof guardedConnect(
      { budget: budget() },
      {
        servername: "localhost",
        ca: [],
        timeout: 5,
        allowH2: true,
        keepAlive: true,
        keepAliveInitialDelay: 1,
        rejectUnauthorized: false,
      },
    ),
    "function",
  );
});

test("queueLimit / queueLimitBytes 0 are refused: they would drop every record", () => {
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, queueLimit: 0 }),
    invalid(/option queueLimit must be an integer of at least 1, got 0/),
  );
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, queueLimitBytes: 0 }),
    invalid(/option queueLimitBytes must be an integer of at least 1, got 0/),
  );
});

test("echoIntervalMs / echoMisses are checked: an interval of 0 would probe in a loop, 0 misses would never wait for one", () => {
  for (const [options, message] of [
    [
      { echoIntervalMs: 0 },
      /option echoIntervalMs must be a positive number of milliseconds, got 0/,
    ],
    [{ echoMisses: 0 }, /option echoMisses must be an integer of at least 1, got 0/],
    [{ echoMisses: 1.5 }, /option echoMisses must be an integer of at least 1, got 1\.5/],
    [
      { echoMisse: 2 },
      /option echoMisse is not a ReconnectingLink option; did you mean echoMisses\?/,
    ],
  ] as const) {
    assert.throws(
      () => new ReconnectingLink({ host: "127.0.0.1", port: 1, ...options } as never),
      invalid(message),
    );
  }
});

test("ReconnectingLink takes the Guard-style preflight: { udpEchoPort } as well: a dead peer costs no TCP attempt", async (t) => {
  const gone = await LiveListener.listen();
  await gone.close();
  const closedUdp = await SilentUdpPort.listen();
  await closedUdp.close(); // ICMP port unreachable: the preflight says refused
  for (const spelling of [
    { udpEchoPort: closedUdp.port },
    { preflight: { udpEchoPort: closedUdp.port } },
  ]) {
    const link = new ReconnectingLink({
      host: "127.0.0.1",
      port: gone.port,
      clock: new FakeClock(),
      guard: { budget: budget() },
      ...spelling,
    });
    t.after(() => link.close());
    const attempts: unknown[] = [];
    link.guard.onAttempt((e) => attempts.push(e));
    // The ICMP answer arrives on the event loop: wait turns until the link has failed once.
    while (link.state !== "waiting") await new Promise((r) => setImmediate(r));
    assert.equal(link.stats().failures, 1);
    assert.equal(attempts.length, 0, `${JSON.stringify(spelling)}: no TCP attempt was made`);
  }
});

test("a link given a Guard instance refuses udpEchoPort / preflight it would ignore", () => {
  const guard = new Guard({ budget: budget() });
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, guard, udpEchoPort: 7 }),
    invalid(/option udpEchoPort must be left out when guard is a Guard instance/),
  );
  assert.throws(
    () =>
      new ReconnectingLink({ host: "127.0.0.1", port: 1, guard, preflight: { udpEchoPort: 7 } }),
    invalid(/option preflight must be left out/),
  );
});

/** The option names in docs/guard.md's options reference, section by section. */
function documentedKeys(): {
  guard: string[];
  preflight: string[];
  backoff: string[];
  link: string[];
} {
  const text = readFileSync(new URL("../../../docs/guard.md", import.meta.url), "utf8");
  const out = {
    guard: [] as string[],
    preflight: [] as string[],
    backoff: [] as string[],
    link: [] as string[],
  };
  let section: "guard" | "connect" | "link" | null = null;
  for (const line of text.slice(text.indexOf("### Options reference")).split("\n")) {
    if (line.startsWith("| **Guard**")) section = "guard";
    else if (line.startsWith("| **`guard.connect()`**")) section = "connect";
    else if (line.startsWith("| **ReconnectingLink**")) section = "link";
    else if (!line.startsWith("|")) {
      if (section === "link") break;
    } else if (section) {
      const cell = line.split("|")[1] ?? "";
      for (const [, name] of cell.matchAll(/`([A-Za-z.]+)`/g)) {
        if (!name) continue;
        if (section === "link") out.link.push(name);
        else if (section === "guard") {
          const [head, tail] = name.split(".");
          if (tail && (head === "preflight" || head === "backoff")) out[head].push(tail);
          else out.guard.push(name);
        }
      }
    }
  }
  return out;
}
const documented = documentedKeys();

test("the docs' options reference lists exactly the keys the guard accepts", () => {
  // preflight and backoff are documented by their own keys (preflight.udpEchoPort, …).
  assert.deepEqual(
    [...documented.guard].sort(),
    guardOptionKeys.filter((k) => k !== "preflight" && k !== "backoff").sort(),
  );
  assert.deepEqual([...documented.preflight].sort(), [...preflightOptionKeys].sort());
  assert.deepEqual([...documented.backoff].sort(), [...backoffKeys].sort());
  assert.deepEqual([...documented.link].sort(), [...linkKeys].sort());
});

const unknownKey = (known: readonly string[]) =>
  fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !known.includes(k) && k !== "__proto__");

test("property: a random unknown key is always refused, every documented key accepted", () => {
  fc.assert(
    fc.property(unknownKey(documented.guard), (key) => {
      assert.throws(() => new Guard({ [key]: 1 } as never), invalid(/is not a Guard option/));
    }),
  );
  fc.assert(
    fc.property(unknownKey(documented.preflight), (key) => {
      assert.throws(
        () => new Guard({ preflight: { [key]: 1 } as never }),
        invalid(/is not a Guard preflight option/),
      );
    }),
  );
  fc.assert(
    fc.property(unknownKey(documented.backoff), (key) => {
      assert.throws(() => new Backoff({ [key]: 1 } as never), invalid(/is not a backoff option/));
    }),
  );
  fc.assert(
    fc.property(unknownKey(documented.link), (key) => {
      assert.throws(
        () => new ReconnectingLink({ host: "127.0.0.1", port: 1, [key]: 1 } as never),
        invalid(/is not a ReconnectingLink option/),
      );
    }),
  );
  // Every documented key, each with undefined (its default), is accepted.
  fc.assert(
    fc.property(
      fc.subarray([...documented.guard]),
      fc.subarray([...documented.preflight]),
      fc.subarray([...documented.backoff]),
      (g, p, b) => {
        const options: Record<string, unknown> = { budget: budget() };
        for (const k of g) if (k !== "budget") options[k] = undefined;
        // A preflight needs its port (or a check): the rest may be left to defaults.
        options.preflight = { ...Object.fromEntries(p.map((k) => [k, undefined])), udpEchoPort: 7 };
        options.backoff = Object.fromEntries(b.map((k) => [k, undefined]));
        new Guard(options as never);
      },
    ),
  );
});

const linkKeys = [
  "host",
  "port",
  "udpEchoPort",
  "preflight",
  "guard",
  "queueLimit",
  "queueLimitBytes",
  "writeTimeoutMs",
  "keepAliveMs",
  "closeTimeoutMs",
  "echoIntervalMs",
  "echoMisses",
  "tls",
  "clock",
] as const;
