import http from "node:http";
import { performance } from "node:perf_hooks";
import type { Operation, Sample } from "./types.js";

export interface LoadPlan {
  appPort: number;
  /** Milliseconds between operations of each kind (open loop: they overlap if slow). */
  intervalMs: Record<Operation, number>;
  upstreams: number;
}

/**
 * The users: logins, DB-backed pages and API-backed pages arriving at fixed
 * rates whatever the app's latency (open loop), over keep-alive connections
 * from a process without a limiter.
 */
export class LoadGenerator {
  readonly samples: Sample[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  readonly #inFlight = new Set<Promise<void>>();
  readonly #timers: NodeJS.Timeout[] = [];
  #t0 = 0;
  #apiTurn = 0;

  constructor(readonly plan: LoadPlan) {}

  /** A few of each operation before the window: the first requests pay for JIT and lazy setup. */
  async warmUp(rounds = 3): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      for (const op of ["login", "db", "api"] as const) {
        const path = op === "api" ? `/api?u=${i % this.plan.upstreams}` : `/${op}`;
        await new Promise<void>((resolve) => {
          http
            .get(
              { host: "127.0.0.1", port: this.plan.appPort, path, agent: this.#agent },
              (res) => {
                res.resume();
                res.on("end", resolve);
                res.on("error", () => resolve());
              },
            )
            .on("error", () => resolve());
        });
      }
    }
  }

  start(t0: number): void {
    this.#t0 = t0;
    for (const op of ["login", "db", "api"] as const) {
      this.#fire(op);
      this.#timers.push(setInterval(() => this.#fire(op), this.plan.intervalMs[op]));
    }
  }

  stop(): void {
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  /**
   * Waits for the operations still running, up to `capMs`; those that do not
   * finish by then are recorded as failed at the time they had taken.
   */
  async drain(capMs: number): Promise<void> {
    const cap = new Promise((resolve) => setTimeout(resolve, capMs).unref());
    await Promise.race([Promise.allSettled([...this.#inFlight]), cap]);
    this.#agent.destroy();
  }

  #fire(op: Operation): void {
    const path = op === "api" ? `/api?u=${this.#apiTurn++ % this.plan.upstreams}` : `/${op}`;
    const started = performance.now();
    const sample: Sample = { op, startMs: started - this.#t0, durationMs: Number.NaN, ok: false };
    this.samples.push(sample);
    const done = new Promise<void>((resolve) => {
      const finish = (error?: string) => {
        if (!Number.isNaN(sample.durationMs)) return;
        sample.durationMs = performance.now() - started;
        sample.ok = error === undefined;
        if (error !== undefined) sample.error = error;
        resolve();
      };
      http
        .get({ host: "127.0.0.1", port: this.plan.appPort, path, agent: this.#agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            if (body.length < 200) body += d;
          });
          res.on("end", () =>
            finish(res.statusCode === 200 ? undefined : body.trim() || `HTTP ${res.statusCode}`),
          );
          res.on("error", (e: Error) => finish(e.message));
        })
        .on("error", (e: Error) => finish(`load generator: ${e.message}`));
    });
    this.#inFlight.add(done);
    void done.then(() => this.#inFlight.delete(done));
  }

  /** Operations cut off by drain(): failed, with the time they had taken so far. */
  closeOpenSamples(now: number): void {
    for (const s of this.samples) {
      if (Number.isNaN(s.durationMs)) {
        s.durationMs = now - this.#t0 - s.startMs;
        s.ok = false;
        s.error = "no answer by the end of the drain";
      }
    }
  }
}
