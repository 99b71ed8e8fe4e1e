import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../helpers/run-cli.js";

// dist/test/docs/ → the repository.
const root = fileURLToPath(new URL("../../../", import.meta.url));

function documents(): string[] {
  const docs = readdirSync(resolve(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => resolve(root, "docs", f));
  return [resolve(root, "README.md"), ...docs];
}

function sources(dir: string): string[] {
  return readdirSync(resolve(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => resolve(root, dir, f));
}

/** The anchors a Markdown renderer gives the headings of `text` (GitHub's rule). */
function anchors(text: string): Set<string> {
  const slugs = [...text.matchAll(/^#+ (.+)$/gm)].map((m) =>
    (m[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-"),
  );
  return new Set(slugs);
}

test("every relative link in README.md and docs/ names a file (and heading) inside the repository", () => {
  const broken: string[] = [];
  for (const file of documents()) {
    const text = readFileSync(file, "utf8");
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!target || /^[a-z]+:/i.test(target)) continue;
      const [pathPart, anchor] = target.split("#") as [string, string | undefined];
      const path = pathPart === "" ? file : resolve(dirname(file), pathPart);
      const inside = !relative(root, path).startsWith("..");
      const ok =
        inside &&
        existsSync(path) &&
        (anchor === undefined || anchors(readFileSync(path, "utf8")).has(anchor));
      if (!ok) broken.push(`${relative(root, file)} → ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});

test("no doc or source names a file or tracker outside the repository", () => {
  const found: string[] = [];
  const files = [...documents(), ...sources("src"), ...sources("bench")];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, i) => {
      if (/INCIDENT\.md|\.\.\/shared\b/.test(line) || /\bissues? #?\d/i.test(line)) {
        found.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(found, []);
});

test("docs/incident.md tells the story with the numbers the profiles use", () => {
  const text = readFileSync(resolve(root, "docs/incident.md"), "utf8");
  for (const fact of ["21 s", "500 ms", "SYN_SENT", "UDP echo", "iisreset", "FIFO"]) {
    assert.ok(text.includes(fact), `docs/incident.md mentions ${fact}`);
  }
});

test("synlimit profiles cites only documents that exist in the repository", async () => {
  const { code, stdout } = await runCli(["profiles"]);
  assert.equal(code, 0);
  const cited = [...stdout.matchAll(/\b(\S+\.md)\b/g)].map((m) => m[1] as string);
  assert.ok(cited.length > 0, "the incident profile cites its document");
  for (const doc of cited) assert.ok(existsSync(resolve(root, doc)), `${doc} exists`);
});
