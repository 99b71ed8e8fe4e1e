import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

// The rules of docs/architecture.md, checked on the sources (dist/test/ → src/).
const src = fileURLToPath(new URL("../../src/", import.meta.url));

const rootFiles = new Set([
  "errors.ts",
  "clock.ts",
  "defaults.ts",
  "deadlines.ts",
  "loopback.ts",
  "stats.ts",
  "unemulated.ts",
  "worker-options.ts",
]);
/** The module a source file belongs to. */
function moduleOf(file: string): string {
  if (rootFiles.has(file)) return "root";
  if (!file.includes("/")) return file.replace(/\.ts$/, "");
  return file.slice(0, file.indexOf("/"));
}

function imports(): Array<{ from: string; to: string; file: string }> {
  const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith(".ts"),
  );
  return files.flatMap((file) =>
    [
      ...readFileSync(join(src, file), "utf8").matchAll(
        /(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g,
      ),
    ].map((m) => {
      const target = normalize(join(dirname(file), m[1] as string)).replace(/\.js$/, ".ts");
      return { from: moduleOf(file), to: moduleOf(target), file: `${file} → ${target}` };
    }),
  );
}

const edges = imports().filter((e) => e.from !== e.to);

function violations(rule: (from: string, to: string) => boolean): string[] {
  return edges.filter((e) => !rule(e.from, e.to)).map((e) => e.file);
}

test("the root files import no folder", () => {
  assert.deepEqual(
    violations((from, to) => from !== "root" || to === "root"),
    [],
  );
});

test("gate/, guard/ and os/ (introspection) import only the root files; targets/ adds os/", () => {
  const allowed: Record<string, string[]> = {
    gate: ["root"],
    guard: ["root"],
    os: ["root"],
    targets: ["root", "os"],
  };
  assert.deepEqual(
    violations((from, to) => !(from in allowed) || (allowed[from] ?? []).includes(to)),
    [],
  );
});

test("nothing imports cli/, and only cli/ imports lab/", () => {
  assert.deepEqual(
    violations((from, to) => to !== "cli" && (to !== "lab" || from === "cli")),
    [],
  );
});

test("the folders import each other without cycles", () => {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    graph.get(e.from)?.add(e.to);
  }
  const cycles: string[] = [];
  const reach = (start: string, node: string, path: string[], seen: Set<string>) => {
    for (const next of graph.get(node) ?? []) {
      if (next === start) cycles.push([...path, next].join(" → "));
      else if (!seen.has(next)) {
        seen.add(next);
        reach(start, next, [...path, next], seen);
      }
    }
  };
  for (const start of graph.keys()) reach(start, start, [start], new Set());
  assert.deepEqual(cycles, []);
});
