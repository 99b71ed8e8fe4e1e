import { attemptsObserved } from "../gate/channels.js";
import type { Attempt, AttemptGate, AttemptHandlers } from "../gate/gate.js";
import type { Destination } from "../gate/types.js";
import { isUnemulated } from "../unemulated.js";
import {
  type ConnectFn,
  type ConnectReq,
  isHappyEyeballs,
  ownerOf,
  type TcpHandle,
  uvStatus,
} from "./tcp-internals.js";
import { connectUntracked } from "./untracked.js";

/**
 * The seam: Node's TCP handle, where `connect(2)` — and so the SYN — happens.
 * Every client (net, tls, http, undici/fetch, pg, ldapts) reaches it after DNS
 * resolution, once per address Happy Eyeballs tries, which is exactly the
 * span of an attempt. Patching here rather than `net.Socket#connect` means a
 * queued socket is, to Node, simply a socket whose connect has not completed:
 * writes buffer, timers run, `destroy()` closes the handle.
 */
interface TcpBinding {
  TCP: { prototype: TcpHandle };
}

const tcpPrototype = (process as unknown as { binding(name: string): TcpBinding }).binding(
  "tcp_wrap",
).TCP.prototype;

/** Supplies the gate that decides each attempt, or null to let it through. */
export type GateSource = () => AttemptGate | null;

// Kept on globalThis so a second copy of synlimit in the process never wraps
// the prototype twice.
const originalSlot = Symbol.for("synlimit.tcpHook.original");
type Teardown = (this: TcpHandle, ...args: unknown[]) => unknown;
type Originals = { connect: ConnectFn; connect6: ConnectFn };
const teardownSlot = Symbol.for("synlimit.tcpHook.teardown");
const global = globalThis as typeof globalThis & {
  [originalSlot]?: Originals;
  [teardownSlot]?: true;
};

export function isHooked(): boolean {
  return global[originalSlot] !== undefined;
}

export function hookTcpConnect(gateFor: GateSource): void {
  if (global[originalSlot]) return;
  const original: Originals = { connect: tcpPrototype.connect, connect6: tcpPrototype.connect6 };
  global[originalSlot] = original;
  tcpPrototype.connect = gated(original.connect, gateFor);
  tcpPrototype.connect6 = gated(original.connect6, gateFor);
  // Own properties on TCP's prototype shadow the shared HandleWrap methods for
  // TCP handles only; a handle with no gated connect falls straight through.
  // They stay after unhooking: a connect gated before uninstall() must still
  // give its slot back when its socket is destroyed afterwards.
  if (!global[teardownSlot]) {
    global[teardownSlot] = true;
    tcpPrototype.close = teardown(tcpPrototype.close as Teardown);
    if (tcpPrototype.reset) tcpPrototype.reset = teardown(tcpPrototype.reset as Teardown);
  }
}

export function unhookTcpConnect(): void {
  const original = global[originalSlot];
  if (!original) return;
  tcpPrototype.connect = original.connect;
  tcpPrototype.connect6 = original.connect6;
  delete global[originalSlot];
}

// The gated connect in progress on a handle (and on its connect request).
const kGated = Symbol("synlimit.gatedConnect");
type Tagged<T> = T & { [kGated]?: GatedConnect };

function gated(connect: ConnectFn, gateFor: GateSource): ConnectFn {
  // Node passes (req, address, port); anything after is kept, on a slower
  // path: a rest parameter would allocate an array on every connect.
  return function gatedConnect(
    this: TcpHandle,
    req: ConnectReq,
    address: string,
    port: number,
  ): number {
    // biome-ignore lint/complexity/noArguments: a rest parameter allocates on every connect
    if (arguments.length > 3) return withRest(this, connect, gateFor, [...arguments]);
    const gate = gateFor();
    if (gate === null) return connect.call(this, req, address, port);
    if (gate._passMode !== null && !attemptsObserved()) {
      return connectUntracked(gate, this, req, connect, address, port);
    }
    if (isUnemulated(ownerOf(this))) return connect.call(this, req, address, port);
    return new GatedConnect(this, req, connect, address, port, null).run(gate);
  };
}

/** The rare connect with more than (req, address, port): always tracked. */
function withRest(handle: TcpHandle, connect: ConnectFn, gateFor: GateSource, args: unknown[]) {
  const [req, address, port, ...rest] = args as [ConnectReq, string, number, ...unknown[]];
  const gate = gateFor();
  if (!gate || isUnemulated(ownerOf(handle)))
    return connect.call(handle, req, address, port, ...rest);
  return new GatedConnect(handle, req, connect, address, port, rest).run(gate);
}

function teardown(original: Teardown): Teardown {
  // close(cb) and reset(cb) take one argument; every TCP handle closes
  // through here, so no rest array either.
  return function gatedTeardown(this: Tagged<TcpHandle>, cb?: unknown): unknown {
    // A queued attempt leaves the line; a pending one frees its slot. The
    // kernel's own completion (ECANCELED) that may follow is then a no-op.
    const gatedConnect = this[kGated];
    if (gatedConnect !== undefined) gatedConnect.cancel();
    return original.call(this, cb);
  };
}

/** Node calls a request's oncomplete with the request as `this`. */
function gatedAfterConnect(
  this: Tagged<ConnectReq>,
  status: number,
  handle: unknown,
  req: unknown,
  readable: unknown,
  writable: unknown,
): unknown {
  return this[kGated]?.complete(status, handle, req, readable, writable);
}

/**
 * One intercepted `handle.connect()`: owns the bookkeeping between gate and
 * handle, and is itself the gate's handler for the attempt.
 */
class GatedConnect implements AttemptHandlers, Destination {
  #attempt: Attempt | null = null;
  #inCall = true;
  #syncStatus = 0;
  /** Node must see exactly one completion per connect request. */
  #completed = false;
  readonly #afterConnect: ConnectReq["oncomplete"];

  constructor(
    readonly handle: Tagged<TcpHandle>,
    readonly req: Tagged<ConnectReq>,
    readonly connect: ConnectFn,
    /** Also the attempt's destination: one object fewer per connect. */
    readonly host: string,
    readonly port: number,
    readonly rest: unknown[] | null,
  ) {
    this.#afterConnect = req.oncomplete;
    req.oncomplete = gatedAfterConnect as ConnectReq["oncomplete"];
    req[kGated] = this;
    handle[kGated] = this;
  }

  run(gate: AttemptGate): number {
    const attempt = gate.request(this, this);
    this.#attempt = attempt;
    this.#inCall = false;
    // Inside handle.connect() Node is not ready for a completion yet.
    if (attempt.state === "rejected")
      this.#fail(uvStatus("ECONNREFUSED"), attempt.error as Error, true);
    return this.#syncStatus;
  }

  onStart(attempt: Attempt): void {
    this.#attempt = attempt;
    const status = this.rest
      ? this.connect.call(this.handle, this.req, this.host, this.port, ...this.rest)
      : this.connect.call(this.handle, this.req, this.host, this.port);
    if (status === 0) return;
    attempt.failed(status);
    if (this.#inCall) {
      // Started at once: Node handles a synchronous error itself.
      this.#syncStatus = status;
      this.#completed = true;
    } else {
      process.nextTick(() => this.complete(status, this.handle, this.req, false, false));
    }
  }

  onTimeout(_attempt: Attempt, error: Error): void {
    this.#fail(uvStatus("ETIMEDOUT"), error, false);
  }

  cancel(): void {
    this.#attempt?.cancel();
  }

  complete(
    status: number,
    handle: unknown,
    req: unknown,
    readable: unknown,
    writable: unknown,
  ): unknown {
    if (this.#completed) return undefined;
    this.#completed = true;
    if (status === 0) this.#attempt?.connected();
    else this.#attempt?.failed(status);
    return this.#afterConnect.call(this.req, status, handle, req, readable, writable);
  }

  /**
   * Ends the connect as the OS would. A single-address connect gets the
   * emulated error itself (with Windows' text); a Happy Eyeballs connect gets
   * the status through Node's own completion path, so Node moves on to the
   * next address exactly as it would after a real failure.
   */
  #fail(status: number, error: Error, deferred: boolean): void {
    const owner = ownerOf(this.handle);
    const single = !isHappyEyeballs(this.#afterConnect);
    const end =
      owner && single
        ? () => {
            this.#completed = true;
            owner.destroy(error);
          }
        : () => this.complete(status, this.handle, this.req, false, false);
    if (deferred) process.nextTick(end);
    else end();
  }
}
