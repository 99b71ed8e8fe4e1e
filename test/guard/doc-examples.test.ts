import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { join, resolve } from "node:path";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { guardChannelNames } from "../../src/guard/channels.js";
import { EchoServer } from "../../src/targets/echo.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { Tarpit } from "../../src/targets/tarpit.js";

// dist/test/guard/ → the repository.
const root = fileURLToPath(new URL("../../../", import.meta.url));

export interface DocBlock {
  /** The heading the block is under. */
  heading: string;
  code: string;
}

/** Every ```ts / ```js block of a Markdown text, with the heading above it. */
export function codeBlocks(markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  let heading = "";
  let open: { lang: string; lines: string[] } | null = null;
  for (const line of markdown.split("\n")) {
    if (open) {
      if (line.startsWith("```")) {
        if (["ts", "js", "typescript", "javascript"].includes(open.lang)) {
          blocks.push({ heading, code: open.lines.join("\n") });
        }
        open = null;
      } else open.lines.push(line);
    } else if (line.startsWith("```")) open = { lang: line.slice(3).trim(), lines: [] };
    else if (/^#+ /.test(line)) heading = line.replace(/^#+ /, "").trim();
  }
  return blocks;
}

interface Run {
  stdout: string;
  /** TCP attempts the guard made (its connect:start channel, counted in the example's process). */
  attempts: number;
  code: number | null;
}

interface Peers {
  port: number;
  echoPort: number;
  /** Raw bytes or HTTP requests the live collector got. */
  received: string[];
}

/** A live collector: HTTP on `port` (raw bytes are recorded too), a UDP echo. */
async function liveCollector(t: TestContext): Promise<Peers> {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      received.push(`${req.method} ${req.url} ${body.includes("login") ? "login-span" : ""}`);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  // A link writes raw records, not HTTP: keep what arrives before the parser refuses it.
  server.on("connection", (s: net.Socket) =>
    s.on("data", (d: Buffer) => {
      if (!/^[A-Z]+ \//.test(d.toString())) received.push(`raw ${d.toString().trim()}`);
    }),
  );
  server.on("clientError", (_e, s: net.Socket) => s.destroy());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const echo = await EchoServer.listen();
  t.after(() => echo.close());
  return { port: (server.address() as net.AddressInfo).port, echoPort: echo.udpPort, received };
}

/** A dead collector: SYNs unanswered (tarpit), echo port silent. */
async function deadCollector(t: TestContext): Promise<Peers> {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const silent = await SilentUdpPort.listen();
  t.after(() => silent.close());
  return { port: tarpit.port, echoPort: silent.port, received: [] };
}

const preloadSource = `
import diagnostics from "node:diagnostics_channel";
let attempts = 0;
diagnostics.subscribe(${JSON.stringify(guardChannelNames.connectStart)}, () => { attempts++; });
process.on("exit", () => process.stderr.write("\\nGUARD " + JSON.stringify({ attempts }) + "\\n"));
`;

/** Transpiles one block as it stands and runs it in its own process against `peers`. */
async function run(t: TestContext, block: DocBlock, peers: Peers): Promise<Run> {
  // Inside the repository, so "synlimit/guard" resolves to this package (self-reference).
  const dir = mkdtempSync(join(root, "dist", ".doc-example-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const js = ts.transpileModule(block.code, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  writeFileSync(join(dir, "example.mjs"), js);
  writeFileSync(join(dir, "preload.mjs"), preloadSource);
  const child = spawn(process.execPath, ["--import", "./preload.mjs", "example.mjs"], {
    cwd: dir,
    env: {
      ...process.env,
      COLLECTOR_PORT: String(peers.port),
      COLLECTOR_ECHO_PORT: String(peers.echoPort),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const [code] = (await once(child, "exit")) as [number | null];
  const guard = /GUARD (\{.*\})/.exec(stderr);
  assert.ok(guard, `the example ran to its end (exit ${code}): ${stderr}`);
  assert.equal(code, 0, `exit code of the "${block.heading}" example: ${stderr}`);
  return {
    stdout,
    attempts: (JSON.parse(guard[1] as string) as { attempts: number }).attempts,
    code,
  };
}

type Check = (r: Run, peers: Peers) => void;

/** What each example of docs/guard.md says it does, by the heading it is under. */
const documented: Record<string, { up: Check; down: Check }> = {
  Use: {
    up: (r) => assert.equal(r.stdout.trim(), "connected"),
    down: (r, p) => {
      assert.match(r.stdout, new RegExp(`breaker open for port ${p.port} \\(preflight\\)`));
      assert.match(r.stdout, /^SYNLIMIT_PREFLIGHT_FAILED$/m);
      assert.equal(r.attempts, 0, "no TCP attempt");
    },
  },
  "node:http / https": {
    up: (r, p) => {
      assert.equal(r.stdout.trim(), "status 200");
      assert.deepEqual(p.received, ["GET / "]);
    },
    down: (r) => {
      assert.equal(r.stdout.trim(), "SYNLIMIT_PREFLIGHT_FAILED");
      assert.equal(r.attempts, 0, "no TCP attempt");
    },
  },
  undici: {
    up: (r, p) => {
      assert.equal(r.stdout.trim(), "status 200");
      assert.deepEqual(p.received, ["GET / "]);
    },
    down: (r) => {
      assert.equal(r.stdout.trim(), "SYNLIMIT_PREFLIGHT_FAILED");
      assert.equal(r.attempts, 0, "no TCP attempt");
    },
  },
  "OpenTelemetry JS exporters": {
    up: (r, p) => {
      assert.equal(r.stdout, "");
      assert.equal(r.attempts, 1);
      assert.deepEqual(p.received, ["POST /v1/traces login-span"]);
    },
    down: (r) => {
      assert.equal(r.stdout.trim(), "export failed");
      assert.equal(r.attempts, 0, "no TCP attempt");
    },
  },
  "ReconnectingLink — an agent's link to its collector": {
    up: (r, p) => {
      const stats = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(stats.state, "connected");
      assert.equal(stats.connects, 1);
      assert.equal(stats.written, 1);
      assert.deepEqual(p.received, ["raw record 1"]);
    },
    down: (r) => {
      const stats = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.notEqual(stats.state, "connected");
      assert.equal(stats.connects, 0);
      assert.equal(r.attempts, 0, "no TCP attempt");
    },
  },
};

const blocks = codeBlocks(readFileSync(resolve(root, "docs/guard.md"), "utf8"));

test("docs/guard.md: every ts/js example is run by this test, and uses only loopback addresses", () => {
  assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
  assert.deepEqual(
    blocks.map((b) => b.heading).filter((h) => !(h in documented)),
    [],
    "an example under a heading this test does not know",
  );
  for (const b of blocks) {
    const hosts = [...b.code.matchAll(/(?:host: |\/\/)"?([\w.-]+)/g)].map((m) => m[1]);
    assert.deepEqual(
      hosts.filter((h) => h !== "127.0.0.1"),
      [],
      `the "${b.heading}" example aims only at loopback`,
    );
  }
});

for (const block of blocks) {
  const check = documented[block.heading];
  if (!check) continue;
  test(`docs/guard.md "${block.heading}": as documented against a live and a dead loopback collector`, async (t) => {
    const live = await liveCollector(t);
    check.up(await run(t, block, live), live);
    const dead = await deadCollector(t);
    check.down(await run(t, block, dead), dead);
  });
}
