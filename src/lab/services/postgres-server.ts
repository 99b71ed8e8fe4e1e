import { randomBytes } from "node:crypto";
import { access, chown, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { usageError } from "../../errors.js";
import {
  type ChildOptions,
  ChildService,
  freePort,
  lookupUser,
  makeTempDir,
  type RealService,
  removeDir,
  run,
  waitUntil,
} from "./process.js";

const PG_ROOT = "/usr/lib/postgresql";
const USER = "synlimit";
const START_TIMEOUT_MS = 15_000;

export interface PostgresServerService extends RealService {
  /** The postmaster, for checking it is gone after `close()`. */
  readonly pid: number;
}

/**
 * A real PostgreSQL on 127.0.0.1, private to the caller: a fresh cluster in a
 * temp directory, its own port and its own Unix-socket directory, so the
 * Debian package's "main" cluster (5432, /var/run/postgresql) is never used
 * or disturbed. Durability is off: the cluster is thrown away on close.
 */
export async function startPostgresServer(): Promise<PostgresServerService> {
  const bin = await findBinDir();
  const owner = await serverUser();
  const dir = await makeTempDir("postgres");
  let child: ChildService | undefined;
  try {
    const data = join(dir, "data");
    const password = randomBytes(12).toString("hex");
    const pwfile = join(dir, "pwfile");
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner.uid !== undefined) await chownAll(owner, dir, pwfile);
    const as: ChildOptions = { ...owner, cwd: dir, env: { ...process.env, LC_ALL: "C" } };
    await run(
      "initdb",
      join(bin, "initdb"),
      [
        "-D",
        data,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        "--auth-host=scram-sha-256",
        "--auth-local=trust",
        "--encoding=UTF8",
        "--locale=C",
        // No fsync: the cluster lives for one test run.
        "--no-sync",
      ],
      as,
    );
    await rm(pwfile);
    const port = await freePort();
    child = new ChildService(
      "postgres",
      join(bin, "postgres"),
      [
        "-D",
        data,
        "-p",
        String(port),
        "-k",
        dir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
      ],
      as,
    );
    const url = `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`;
    const running = child;
    await waitUntil(() => canQuery(url), {
      what: `postgres on 127.0.0.1:${port}`,
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 100,
      child: running,
    });
    return new PostgresServer(url, running, dir);
  } catch (error) {
    await child?.stop("SIGKILL");
    await removeDir(dir);
    throw error;
  }
}

class PostgresServer implements PostgresServerService {
  readonly #child: ChildService;
  readonly #dir: string;
  #closed: Promise<void> | null = null;

  constructor(
    readonly url: string,
    child: ChildService,
    dir: string,
  ) {
    this.#child = child;
    this.#dir = dir;
  }

  get pid(): number {
    return this.#child.pid;
  }

  close(): Promise<void> {
    // SIGINT is PostgreSQL's fast shutdown: sessions are ended, not waited for.
    this.#closed ??= (async () => {
      await this.#child.stop("SIGINT", 5000);
      await removeDir(this.#dir);
    })();
    return this.#closed;
  }
}

/** The newest /usr/lib/postgresql/<version>/bin holding both initdb and postgres. */
async function findBinDir(): Promise<string> {
  const versions = await readdir(PG_ROOT).catch(() => [] as string[]);
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(PG_ROOT, version, "bin");
    const ok = await Promise.all([access(join(bin, "initdb")), access(join(bin, "postgres"))])
      .then(() => true)
      .catch(() => false);
    if (ok) return bin;
  }
  throw usageError(
    `PostgreSQL server not found at ${PG_ROOT}/<version>/bin: install the Debian package postgresql`,
  );
}

/**
 * PostgreSQL refuses to run as root; as root we drop to the account the
 * Debian package creates. Spawning with uid/gid (rather than runuser) keeps
 * the postmaster our direct child, so SIGINT reaches it.
 */
async function serverUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const user = await lookupUser("postgres");
  if (!user) {
    throw usageError(
      "running as root needs the postgres account to run PostgreSQL: install the Debian package postgresql",
    );
  }
  return user;
}

async function chownAll(owner: { uid?: number; gid?: number }, ...paths: string[]): Promise<void> {
  for (const path of paths) await chown(path, owner.uid ?? -1, owner.gid ?? -1);
}

async function canQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  // A refused or reset connection is reported by connect(); this keeps a
  // late socket error from becoming an uncaught exception.
  client.on("error", () => {});
  try {
    await client.connect();
    const result = await client.query("SELECT 1 AS one");
    return result.rows[0]?.one === 1;
  } finally {
    await client.end().catch(() => {});
  }
}
