import { Client as LdapClient } from "ldapts";
import pg from "pg";
import { Pool as HttpPool } from "undici";
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
        Array.from({ length: apiConnectionsPerUpstream }, () => this.callUpstream(i)),
      ),
    ]);
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
    return this.config.upstreams.map(
      ({ host, port }) =>
        new HttpPool(`http://${host}:${port}`, {
          connections: this.config.apiConnectionsPerUpstream,
          keepAliveTimeout: 600_000,
          keepAliveMaxTimeout: 600_000,
          // The emulated OS decides when a connect gives up, as on the incident's server.
          connectTimeout: 600_000,
        }),
    );
  }
}
