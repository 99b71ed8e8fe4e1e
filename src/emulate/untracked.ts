import type { Clock, Timer } from "../clock.js";
import type { AttemptGate } from "../gate/gate.js";
import {
  type ConnectFn,
  type ConnectReq,
  isHappyEyeballs,
  ownerOf,
  type TcpHandle,
  uvStatus,
} from "./tcp-internals.js";

/**
 * Connects that a gate lets through without an `Attempt` (its `_passMode`):
 * with no limit there is no slot to hold and no one to wait, so all that is
 * left is counting start and end exactly once and, under a timing, the
 * emulated give-up. What is needed is kept on Node's connect request itself
 * (no object of its own); Node's completion, which libuv delivers exactly once
 * for every connect it accepted (ECANCELED when the handle closes first),
 * ends it — so no `close()` bookkeeping either.
 */
const kGate = Symbol("synlimit.untracked.gate");
const kAfter = Symbol("synlimit.untracked.oncomplete");
/** Deadline mode: the handle while pending, null once ended. */
const kHandle = Symbol("synlimit.untracked.handle");
const kDueAt = Symbol("synlimit.untracked.dueAt");
/** A gate's deadlines, kept on the gate by this module. */
const kDeadlines = Symbol("synlimit.untracked.deadlines");

type UntrackedReq = ConnectReq & {
  [kGate]?: AttemptGate;
  [kAfter]?: ConnectReq["oncomplete"];
  [kHandle]?: TcpHandle | null;
  [kDueAt]?: number;
};
type GateWithDeadlines = AttemptGate & { [kDeadlines]?: LazyDeadlines };

const UV_ECANCELED = uvStatus("ECANCELED");
const UV_ETIMEDOUT = uvStatus("ETIMEDOUT");

export function connectUntracked(
  gate: AttemptGate,
  handle: TcpHandle,
  req: UntrackedReq,
  connect: ConnectFn,
  address: string,
  port: number,
): number {
  gate._passStarted();
  const status = connect.call(handle, req, address, port);
  if (status !== 0) {
    // Refused inside connect(2): libuv will never complete it.
    gate._passEnded("failed");
    return status;
  }
  req[kGate] = gate;
  req[kAfter] = req.oncomplete;
  req.oncomplete = untrackedAfterConnect as ConnectReq["oncomplete"];
  if (gate._passMode === "deadline") deadlinesOf(gate).add(req, handle);
  return 0;
}

/** Node calls a request's oncomplete with the request as `this`. */
function untrackedAfterConnect(
  this: UntrackedReq,
  status: number,
  handle: unknown,
  req: unknown,
  readable: unknown,
  writable: unknown,
): unknown {
  const gate = this[kGate] as GateWithDeadlines;
  const pending = this[kHandle];
  // Timed out already: Node has had its one completion.
  if (pending === null) return undefined;
  if (pending !== undefined) (gate[kDeadlines] as LazyDeadlines).ended(this);
  gate._passEnded(status === 0 ? "connected" : status === UV_ECANCELED ? "cancelled" : "failed");
  return (this[kAfter] as ConnectReq["oncomplete"]).call(
    this,
    status,
    handle,
    req,
    readable,
    writable,
  );
}

function deadlinesOf(gate: GateWithDeadlines): LazyDeadlines {
  let deadlines = gate[kDeadlines];
  if (deadlines === undefined) {
    deadlines = new LazyDeadlines(gate, gate.options.clock, gate.giveUpAfterMs ?? 0);
    gate[kDeadlines] = deadlines;
  }
  return deadlines;
}

/** Dead entries tolerated behind a long-pending head before the line is compacted. */
const COMPACT_SLACK = 1024;

/**
 * One give-up time for all of a gate's connects, so they fall due in start
 * order: a line in start order and one timer for its head. A connect that
 * completes (a loopback connect does so inside connect(2) or within one turn)
 * is only marked; the line drops marked entries from its front, and compacts
 * when a connect that stays pending keeps many behind it. The timer is never
 * cancelled per connect and never keeps the process alive: a pending connect
 * does that itself. It fires at most once per give-up time while connects
 * come and go, and re-arms only while one is still pending.
 */
class LazyDeadlines {
  readonly #gate: AttemptGate;
  readonly #clock: Clock;
  readonly #afterMs: number;
  readonly #line: UntrackedReq[] = [];
  #head = 0;
  #live = 0;
  #timer: Timer | null = null;

  constructor(gate: AttemptGate, clock: Clock, afterMs: number) {
    this.#gate = gate;
    this.#clock = clock;
    this.#afterMs = afterMs;
  }

  add(req: UntrackedReq, handle: TcpHandle): void {
    req[kHandle] = handle;
    req[kDueAt] = this.#clock.now() + this.#afterMs;
    this.#line.push(req);
    this.#live++;
    if (this.#timer === null) this.#arm(this.#afterMs);
  }

  /** The connect completed before its deadline. */
  ended(req: UntrackedReq): void {
    req[kHandle] = null;
    this.#live--;
    this.#trim();
  }

  #trim(): void {
    const line = this.#line;
    while (this.#head < line.length && (line[this.#head] as UntrackedReq)[kHandle] === null) {
      this.#head++;
    }
    if (this.#head === line.length) {
      line.length = 0;
      this.#head = 0;
    } else if (line.length - this.#head > 2 * this.#live + COMPACT_SLACK) {
      const live = line.filter((r, i) => i >= this.#head && r[kHandle] !== null);
      line.length = 0;
      line.push(...live);
      this.#head = 0;
    }
  }

  #arm(afterMs: number): void {
    const timer = this.#clock.setTimer(() => this.#fire(), Math.max(0, afterMs));
    timer.unref?.();
    this.#timer = timer;
  }

  #fire(): void {
    this.#timer = null;
    const line = this.#line;
    try {
      while (this.#head < line.length) {
        const req = line[this.#head] as UntrackedReq;
        if (req[kHandle] !== null) {
          // A real timer may fire a fraction of a millisecond early.
          if ((req[kDueAt] as number) > this.#clock.now()) break;
          this.#timeOut(req);
        }
        this.#head++;
      }
    } finally {
      // A Happy Eyeballs failure may have started the next address (and so
      // armed a timer for it): the oldest still pending decides.
      (this.#timer as Timer | null)?.cancel();
      this.#timer = null;
      this.#trim();
      const head = line[this.#head];
      if (head !== undefined) this.#arm((head[kDueAt] as number) - this.#clock.now());
    }
  }

  /** The emulated OS gives up: the socket ends as it would there. */
  #timeOut(req: UntrackedReq): void {
    const handle = req[kHandle] as TcpHandle;
    req[kHandle] = null;
    this.#live--;
    const error = this.#gate._passTimedOut({ host: req.address ?? "", port: req.port ?? 0 });
    const after = req[kAfter] as ConnectReq["oncomplete"];
    const owner = ownerOf(handle);
    if (owner && !isHappyEyeballs(after)) owner.destroy(error);
    else after.call(req, UV_ETIMEDOUT, handle, req, false, false);
  }
}
