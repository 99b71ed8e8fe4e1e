import { readFileSync } from "node:fs";
import { missingPackages } from "../errors.js";

/**
 * The packages only the lab and the HTML reports use are optional peers, so
 * that installing synlimit for `synlimit/guard` or `synlimit/register`
 * does not bring a database and a chart library along. A command that needs
 * them loads them here and, when they are missing, says in one line which
 * to install (pinned as the repository tests them).
 */
export async function loadOptional<T>(command: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const name = missingPackageName(error);
    if (name === null) throw error;
    const peers = optionalPeers();
    const wanted = Object.keys(peers).length > 0 ? peers : { [name]: "" };
    throw missingPackages(
      command,
      Object.entries(wanted).map(([n, v]) => (v ? `${n}@${v}` : n)),
    );
  }
}

function missingPackageName(error: unknown): string | null {
  const e = error as { code?: unknown; message?: unknown };
  if (e?.code !== "ERR_MODULE_NOT_FOUND" || typeof e.message !== "string") return null;
  return /Cannot find package '([^']+)'/.exec(e.message)?.[1] ?? null;
}

function optionalPeers(): Record<string, string> {
  const manifest = JSON.parse(
    readFileSync(new URL("../../../package.json", import.meta.url), "utf8"),
  ) as { peerDependencies?: Record<string, string> };
  const peers = manifest.peerDependencies ?? {};
  // synlimit-sockdiag is optional for the gate, not needed by these commands.
  return Object.fromEntries(Object.entries(peers).filter(([n]) => n !== "synlimit-sockdiag"));
}
