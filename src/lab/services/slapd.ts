import { createHash, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "ldapts";
import {
  ChildService,
  freePort,
  makeTempDir,
  type RealService,
  removeDir,
  requireFile,
  waitUntil,
} from "./process.js";

const SLAPD = "/usr/sbin/slapd";
const SCHEMA_DIR = "/etc/ldap/schema";
const MODULE_DIR = "/usr/lib/ldap";
const SUFFIX = "dc=synlimit,dc=test";
const BIND_DN = `cn=login,${SUFFIX}`;
const START_TIMEOUT_MS = 10_000;

export interface SlapdService extends RealService {
  readonly bindDN: string;
  readonly password: string;
  /** The slapd process, for checking it is gone after `close()`. */
  readonly pid: number;
}

/**
 * A real OpenLDAP server on 127.0.0.1, private to the caller: its own
 * slapd.conf, mdb database and port in a temp directory, so a system slapd
 * (Debian starts one on install) neither helps nor gets in the way. The
 * login DN is the rootdn, which slapd authenticates without a directory
 * entry — the bind is all the lab needs.
 */
export async function startSlapd(options: { binary?: string } = {}): Promise<SlapdService> {
  const binary = options.binary ?? SLAPD;
  await requireFile(binary, "slapd");
  await requireFile(join(SCHEMA_DIR, "core.schema"), "slapd", "readable");
  const dir = await makeTempDir("slapd");
  let child: ChildService | undefined;
  try {
    const password = randomBytes(12).toString("hex");
    await mkdir(join(dir, "db"));
    await writeFile(join(dir, "slapd.conf"), config(dir, password), { mode: 0o600 });
    const port = await freePort();
    const url = `ldap://127.0.0.1:${port}`;
    // -d 0 keeps slapd in the foreground (a child we can kill) without debug
    // output. As root it stays root: no -u/-g, since everything it touches
    // is in our own directory.
    child = new ChildService(
      "slapd",
      binary,
      ["-f", join(dir, "slapd.conf"), "-h", `${url}/`, "-d", "0"],
      { cwd: dir },
    );
    const running = child;
    await waitUntil(() => canBind(url, password), {
      what: `slapd on ${url}`,
      timeoutMs: START_TIMEOUT_MS,
      child: running,
    });
    return new Slapd(url, password, running, dir);
  } catch (error) {
    await child?.stop("SIGKILL");
    await removeDir(dir);
    throw error;
  }
}

class Slapd implements SlapdService {
  readonly url: string;
  readonly bindDN = BIND_DN;
  readonly #password: string;
  readonly #child: ChildService;
  readonly #dir: string;
  #closed: Promise<void> | null = null;

  constructor(url: string, password: string, child: ChildService, dir: string) {
    this.url = url;
    this.#password = password;
    this.#child = child;
    this.#dir = dir;
  }

  // A getter, so the password stays out of JSON.stringify, spread and inspect.
  get password(): string {
    return this.#password;
  }

  get pid(): number {
    return this.#child.pid;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#child.stop("SIGTERM", 3000);
      await removeDir(this.#dir);
    })();
    return this.#closed;
  }
}

function config(dir: string, password: string): string {
  return [
    `include ${SCHEMA_DIR}/core.schema`,
    `modulepath ${MODULE_DIR}`,
    "moduleload back_mdb",
    `pidfile ${join(dir, "slapd.pid")}`,
    `argsfile ${join(dir, "slapd.args")}`,
    "database mdb",
    // The default map size is 10 MiB already; say so, so a copied config stays small.
    "maxsize 10485760",
    `suffix "${SUFFIX}"`,
    `rootdn "${BIND_DN}"`,
    `rootpw ${ssha(password)}`,
    `directory ${join(dir, "db")}`,
    "",
  ].join("\n");
}

/** RFC 2307-style {SSHA}, so the password is not stored in clear even in a temp file. */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash("sha1").update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

async function canBind(url: string, password: string): Promise<boolean> {
  const client = new Client({ url, timeout: 1000, connectTimeout: 1000 });
  try {
    await client.bind(BIND_DN, password);
    return true;
  } finally {
    await client.unbind().catch(() => {});
  }
}
