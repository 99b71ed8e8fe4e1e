import { statSync } from "node:fs";
import { scanTrace } from "../record/read.js";
import type { RoleMap } from "../record/roles.js";
import { type Outcome, outcomes, type TraceRecord } from "../record/trace.js";
import { Prng } from "./prng.js";

/** Outcome codes in the typed arrays: the index in `outcomes`. */
export const OUTCOME_CONNECTED = 0;
export const OUTCOME_TIMEOUT = outcomes.indexOf("timeout");
export const OUTCOME_CANCELLED = outcomes.indexOf("cancelled");

/**
 * A trace as columns (structure of arrays): the simulator reads a million
 * attempts without a million objects. Index i is the i-th line of the trace.
 */
export interface Workload {
  readonly n: number;
  /** Request time; ignored for attempts with a parent (they follow it). */
  readonly t: Float64Array;
  readonly durationMs: Float64Array;
  readonly outcome: Uint8Array;
  /** For `cancelled` attempts: how long after its request the program gave up; else Infinity. */
  readonly patienceMs: Float64Array;
  readonly role: Int32Array;
  readonly roleNames: readonly string[];
  readonly dest: Int32Array;
  readonly destNames: readonly string[];
  /** The destination's host, for the rate policy's working set. */
  readonly host: Int32Array;
  /** Index of the attempt this one follows, or -1. */
  readonly parent: Int32Array;
  readonly gapMs: Float64Array;
}

/** The role attempts without one are reported under. */
export const NO_ROLE = "(none)";

class Interner {
  readonly names: string[] = [];
  readonly #index = new Map<string, number>();
  of(name: string): number {
    let i = this.#index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.#index.set(name, i);
    }
    return i;
  }
}

function allocate(n: number) {
  return {
    n,
    t: new Float64Array(n),
    durationMs: new Float64Array(n),
    outcome: new Uint8Array(n),
    patienceMs: new Float64Array(n).fill(Number.POSITIVE_INFINITY),
    role: new Int32Array(n),
    dest: new Int32Array(n),
    host: new Int32Array(n),
    parent: new Int32Array(n).fill(-1),
    gapMs: new Float64Array(n),
  };
}

/** Columns from trace records; `roles` labels attempts the trace left without a role. */
export function workloadFromRecords(records: readonly TraceRecord[], roles?: RoleMap): Workload {
  const w = allocate(records.length);
  const roleNames = new Interner();
  const destNames = new Interner();
  const hostNames = new Interner();
  const indexOfId = new Map<number, number>();
  const outcomeCode = new Map<Outcome, number>(outcomes.map((o, i) => [o, i]));
  records.forEach((r, i) => {
    indexOfId.set(r.id, i);
    w.t[i] = r.t;
    w.durationMs[i] = r.durationMs;
    const code = outcomeCode.get(r.outcome) as number;
    w.outcome[i] = code;
    if (code === OUTCOME_CANCELLED) w.patienceMs[i] = (r.waitMs ?? 0) + r.durationMs;
    w.role[i] = roleNames.of(r.role ?? roles?.roleOfDest(r.dest) ?? NO_ROLE);
    w.dest[i] = destNames.of(r.dest);
    w.host[i] = hostNames.of(r.dest.slice(0, r.dest.lastIndexOf(":")));
    if (r.after !== undefined) {
      const p = indexOfId.get(r.after);
      if (p !== undefined) {
        w.parent[i] = p;
        w.gapMs[i] = r.gapMs ?? 0;
      }
    }
  });
  return { ...w, roleNames: roleNames.names, destNames: destNames.names };
}

/**
 * Columns straight from a trace file: what `workloadFromRecords(await
 * loadTrace(path), roles)` gives (tests check it), without a record object
 * per line. Columns grow by doubling from a guess based on the file size.
 */
export async function loadWorkload(path: string, roles?: RoleMap): Promise<Workload> {
  let w = allocate(
    Math.max(1024, Math.ceil((statSync(path, { throwIfNoEntry: false })?.size ?? 0) / 64)),
  );
  const roleNames = new Interner();
  const hostNames = new Interner();
  // Per name of the trace (dest, role): its index in the columns' names, -1 until first used.
  const roleOfTraceRole: number[] = [];
  const roleOfDest: number[] = [];
  const hostOfDest: number[] = [];
  const cur = await scanTrace(path, (c) => {
    const i = c.index;
    if (i === w.n) w = grow(w);
    w.t[i] = c.t;
    w.durationMs[i] = c.durationMs;
    w.outcome[i] = c.outcome;
    w.patienceMs[i] =
      c.outcome === OUTCOME_CANCELLED
        ? (Number.isNaN(c.waitMs) ? 0 : c.waitMs) + c.durationMs
        : Number.POSITIVE_INFINITY;
    let role: number;
    if (c.role >= 0) {
      role = roleOfTraceRole[c.role] ?? -1;
      if (role < 0) role = roleOfTraceRole[c.role] = roleNames.of(c.roleNames[c.role] as string);
    } else {
      role = roleOfDest[c.dest] ?? -1;
      if (role < 0) {
        const dest = c.destNames[c.dest] as string;
        role = roleOfDest[c.dest] = roleNames.of(roles?.roleOfDest(dest) ?? NO_ROLE);
      }
    }
    w.role[i] = role;
    w.dest[i] = c.dest;
    let host = hostOfDest[c.dest] ?? -1;
    if (host < 0) {
      const dest = c.destNames[c.dest] as string;
      host = hostOfDest[c.dest] = hostNames.of(dest.slice(0, dest.lastIndexOf(":")));
    }
    w.host[i] = host;
    w.parent[i] = c.afterIndex;
    w.gapMs[i] = c.afterIndex >= 0 ? c.gapMs : 0;
  });
  const n = cur.index + 1;
  return {
    n,
    t: w.t.subarray(0, n),
    durationMs: w.durationMs.subarray(0, n),
    outcome: w.outcome.subarray(0, n),
    patienceMs: w.patienceMs.subarray(0, n),
    role: w.role.subarray(0, n),
    roleNames: roleNames.names,
    dest: w.dest.subarray(0, n),
    destNames: [...cur.destNames],
    host: w.host.subarray(0, n),
    parent: w.parent.subarray(0, n),
    gapMs: w.gapMs.subarray(0, n),
  };
}

function grow(w: ReturnType<typeof allocate>): ReturnType<typeof allocate> {
  const g = allocate(2 * w.n);
  g.t.set(w.t);
  g.durationMs.set(w.durationMs);
  g.outcome.set(w.outcome);
  g.patienceMs.set(w.patienceMs);
  g.role.set(w.role);
  g.dest.set(w.dest);
  g.host.set(w.host);
  g.parent.set(w.parent);
  g.gapMs.set(w.gapMs);
  return g;
}

export interface PoissonMix {
  n: number;
  seed: number;
  /** Mean time between requests. */
  meanInterarrivalMs: number;
  /** Share of attempts to a dead peer, lasting `deadMs` and ending in timeout. */
  deadFraction: number;
  deadMs: number;
  /** Duration of the others (connected). */
  liveMs: number;
}

/**
 * Poisson arrivals of a dead/live mix (role "agent" for dead, "login" for
 * live): the M/G/1 workload of the theory tests and the benchmark.
 */
export function generatePoissonMix(mix: PoissonMix): Workload {
  const w = allocate(mix.n);
  const rng = new Prng(mix.seed);
  const dead = Math.round(mix.deadFraction * 4294967296);
  let t = 0;
  for (let i = 0; i < mix.n; i++) {
    t += rng.nextExponential(mix.meanInterarrivalMs);
    w.t[i] = t;
    const isDead = rng.nextUint32() < dead;
    w.durationMs[i] = isDead ? mix.deadMs : mix.liveMs;
    w.outcome[i] = isDead ? OUTCOME_TIMEOUT : OUTCOME_CONNECTED;
    w.role[i] = isDead ? 0 : 1;
    w.dest[i] = isDead ? 0 : 1;
    w.host[i] = isDead ? 0 : 1;
  }
  return {
    ...w,
    roleNames: ["agent", "login"],
    destNames: ["127.0.0.3:9", "127.0.0.2:389"],
  };
}

/** Arbitrary columns (tests, hand-made workloads): times, durations, outcomes; one destination. */
export function workloadOf(
  items: ReadonlyArray<{
    t: number;
    durationMs: number;
    outcome?: Outcome;
    dest?: string;
    role?: string;
    parent?: number;
    gapMs?: number;
  }>,
): Workload {
  const records: TraceRecord[] = items.map((x, i) => ({
    id: i,
    t: x.t,
    dest: x.dest ?? "127.0.0.1:1",
    durationMs: x.durationMs,
    outcome: x.outcome ?? "connected",
    ...(x.role !== undefined && { role: x.role }),
    ...(x.parent !== undefined && { after: x.parent, gapMs: x.gapMs ?? 0 }),
  }));
  return workloadFromRecords(records);
}
