import assert from "node:assert/strict";
import { test } from "node:test";
import { readSynSent } from "../../src/os/linux/syn-sent.js";
import { finished, registerUrl, startCli } from "../helpers/run-cli.js";

/** Resolves with the first match of `pattern` in the child's stderr. */
function stderrMatch(
  child: ReturnType<typeof startCli>,
  pattern: RegExp,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (d: Buffer) => {
      text += d.toString("utf8");
      const m = pattern.exec(text);
      if (m) {
        child.stderr?.off("data", onData);
        resolve(m);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`exited ${code} before ${pattern}: ${text}`)));
  });
}

test("Ctrl-C mid-run: exit 130 with one line, and no SYN_SENT socket to the tarpit remains", async (t) => {
  // A long settle window keeps the probe waiting on a held attempt; the
  // incident's limiter makes it find the limit and start its helper process.
  const child = startCli(["probe", "--settle", "1500"], {
    env: { SYNLIMIT_PROFILE: "incident", SYNLIMIT_TIMING: "none" },
    nodeArgs: ["--import", registerUrl],
  });
  t.after(() => child.kill("SIGKILL"));
  const port = Number(
    (await stderrMatch(child, /blackhole 127\.0\.0\.[12]:(\d+) \(local tarpit\)/))[1],
  );
  await stderrMatch(child, /1 pending attempt → live blocked/);
  const pending = (await readSynSent()).filter((e) => e.remote.port === port);
  assert.equal(pending.length, 1, "the probe holds one attempt in SYN_SENT while it confirms");

  const stderrLines: string[] = [];
  child.stderr?.setEncoding("utf8").on("data", (d: string) => stderrLines.push(...d.split("\n")));
  child.kill("SIGINT");
  const r = await finished(child);
  assert.equal(r.code, 130);
  assert.deepEqual(
    stderrLines.filter((l) => l !== ""),
    ["synlimit: probe interrupted; every pending attempt was cancelled"],
  );
  assert.equal(r.stdout, "", "no verdict after an interruption");
  assert.deepEqual(
    (await readSynSent()).filter((e) => e.remote.port === port),
    [],
    "no SYN_SENT socket to the tarpit remains",
  );
});

test("Ctrl-C while --measure-give-up waits for the host's give-up: exit 130, the kept attempt is cancelled", async (t) => {
  // No emulation: the attempt waits for the kernel's own give-up (minutes by default).
  const child = startCli(["probe", "--measure-give-up", "--max", "4"]);
  t.after(() => child.kill("SIGKILL"));
  const port = Number(
    (await stderrMatch(child, /keeping one attempt to 127\.0\.0\.[12]:(\d+) open until/))[1],
  );
  const held = (await readSynSent()).filter((e) => e.remote.port === port);
  assert.equal(held.length, 1, "exactly one attempt kept pending while waiting");
  child.kill("SIGINT");
  const r = await finished(child);
  assert.equal(r.code, 130, r.stdout + r.stderr);
  assert.equal(r.stdout, "");
  assert.deepEqual(
    (await readSynSent()).filter((e) => e.remote.port === port),
    [],
    "no SYN_SENT socket to the tarpit remains",
  );
});
