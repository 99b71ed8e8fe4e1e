import { performance } from "node:perf_hooks";
import { Client as LdapClient } from "ldapts";
import pg from "pg";
import { Pool as HttpPool } from "undici";
import type { Clock } from "../../clock.js";
import { defaults } from "../../defaults.js";
import { Guard, guardedConnect } from "../../guard/index.js";
import type { AppConfig } from "./config.js";

/**
 * The app's three kinds of outbound traffic, as on the incident's server:
 * a directory bind over a fresh TCP connection per login (ADsOpenObject),
 * a pooled database, and keep-alive pools to HTTP APIs. Only the first
 * needs a connect attempt in the steady state.
 */
export class Backends {
  #db: pg.Pool;
  #apis: HttpPool[];
  #apiGuard: Guard | null | undefined;

  constructor(readonly config: AppConfig) {
    this.#db = this.#newDb();
    this.#apis = this.#newApis();
  }

  async login(): Promise<void> {
    const client = new LdapClient({ url: this.config.ldap.url });
    try {
      await client.bind(this.config.ldap.bindDN, this.config.ldap.password);
    } finally {
      await client.unbind().catch(() => {});
    }
  }

  async query(): Promise<void> {
    await this.#db.query("SELECT 1");
  }

  async callUpstream(index: number): Promise<void> {
    const pool = this.#apis[index % this.#apis.length];
    if (!pool) throw new Error("no upstreams configured");
    const res = await pool.request({ path: "/", method: "GET" });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`upstream ${index} answered ${res.statusCode}`);
  }

  /** Opens every pooled connection before measuring, as a warm site has them. */
  async warm(): Promise<void> {
    const { dbPoolSize, apiConnectionsPerUpstream, upstreams } = this.config;
    await Promise.all([
      ...Array.from({ length: dbPoolSize }, () => this.#db.query("SELECT pg_sleep(0.05)")),
      ...upstreams.flatMap((_, i) =>
        Array.from({ length: apiConnectionsPerUpstream }, () => this.#warmUpstream(i)),
      ),
    ]);
  }

  /**
   * A guarded pool's first connects run under a deadline of a few field
   * seconds — tens of lab milliseconds, which a busy machine can miss while
   * every pool opens at once. Before the window that is no finding: try again
   * once the breaker lets a try through.
   */
  async #warmUpstream(index: number): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.callUpstream(index);
      } catch (error) {
        if (this.config.apiPools !== "guarded" || tries >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** The `iisreset`: every pool dropped at once, so every connection must be made again. */
  flush(): void {
    const [db, apis] = [this.#db, this.#apis];
    this.#db = this.#newDb();
    this.#apis = this.#newApis();
    db.end().catch(() => {});
    for (const api of apis) api.destroy().catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#db.end(), ...this.#apis.map((a) => a.destroy())]);
  }

  #newDb(): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.config.postgresUrl,
      max: this.config.dbPoolSize,
      // A pool that closes idle connections would make attempts of its own.
      idleTimeoutMillis: 0,
    });
    pool.on("error", () => {});
    return pool;
  }

  #newApis(): HttpPool[] {
    const { upstreams, apiPools, timeScale } = this.config;
    // One guard for every API pool, kept across a flush as a process keeps its breakers;
    // a budget slot per upstream, so a dead one's test never delays a healthy pool.
    this.#apiGuard ??=
      apiPools === "guarded"
        ? new Guard({
            budget: "lab-api",
            maxInFlight: upstreams.length,
            // The guard's ceiling, not its 1 s floor: 20 lab ms is within a busy machine's noise.
            connectTimeoutMs: defaults.guardConnectTimeoutCeilingMs,
            clock: scaledClock(timeScale),
          })
        : null;
    const guard = this.#apiGuard;
    return upstreams.map(
      ({ host, port }) =>
        new HttpPool(`http://${host}:${port}`, {
          connections: this.config.apiConnectionsPerUpstream,
          keepAliveTimeout: 600_000,
          keepAliveMaxTimeout: 600_000,
          // Plain: the emulated OS decides when a connect gives up, as on the incident's
          // server. Guarded: the guard's short deadline and breaker do.
          ...(guard ? { connect: guardedConnect(guard) } : { connectTimeout: 600_000 }),
        }),
    );
  }
}

/**
 * The guard's clock at the lab's time scale: its deadlines and backoff are
 * field durations (a 1–3 s connect deadline, 1 s first backoff), run as fast
 * as the emulated 21 s attempt is.
 */
function scaledClock(timeScale: number): Clock {
  return {
    now: () => performance.now() / timeScale,
    setTimer(fn, ms) {
      const handle = setTimeout(fn, ms * timeScale);
      handle.unref();
      return { cancel: () => clearTimeout(handle) };
    },
  };
}
