import { constants as osConstants } from "node:os";

/**
 * The one error catalogue. Every error synlimit itself raises has a stable
 * `SYNLIMIT_…` code; messages carry the numbers and addresses involved so a
 * log line alone is enough to act on.
 *
 * Emulated operating-system failures are the exception: a limiter must fail a
 * connect the way the OS would, so client libraries (pg, undici, ldapts) that
 * branch on `ETIMEDOUT` or `ECONNREFUSED` keep working. Those errors carry the
 * OS code in `code` and the synlimit code in `reason`.
 */
export type SynlimitCode =
  | "SYNLIMIT_INVALID_OPTION"
  | "SYNLIMIT_INVALID_ENV"
  | "SYNLIMIT_ATTEMPT_REJECTED"
  | "SYNLIMIT_EMULATED_TIMEOUT"
  | "SYNLIMIT_TARPIT_UNVERIFIED"
  | "SYNLIMIT_UNSUPPORTED_PLATFORM"
  | "SYNLIMIT_USAGE"
  | "SYNLIMIT_BREAKER_OPEN"
  | "SYNLIMIT_PREFLIGHT_FAILED"
  | "SYNLIMIT_CONNECT_TIMEOUT"
  | "SYNLIMIT_ABORTED"
  | "SYNLIMIT_ADDRESS_IN_USE"
  | "SYNLIMIT_CHILD_FAILED"
  | "SYNLIMIT_CANNOT_TEST"
  | "SYNLIMIT_LINK_STALLED"
  | "SYNLIMIT_INVALID_TRACE"
  | "SYNLIMIT_INVALID_CAPTURE"
  | "SYNLIMIT_MISSING_PACKAGE";

// Registered, so two copies of synlimit in one process (a library's and the
// application's) recognise each other's errors where `instanceof` cannot.
const brand = Symbol.for("synlimit.error");

export class SynlimitError extends Error {
  readonly code: SynlimitCode;
  declare readonly [brand]: true;
  constructor(code: SynlimitCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SynlimitError";
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }
}

/** True for an error raised by any copy of synlimit (its `code` is a `SYNLIMIT_…` code). */
export function isSynlimitError(value: unknown): value is SynlimitError {
  return (
    typeof value === "object" && value !== null && (value as { [brand]?: unknown })[brand] === true
  );
}

/** A bad option passed to a constructor or `install()`: a programming error. */
export function invalidOption(name: string, expected: string, got: unknown): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_INVALID_OPTION",
    `option ${name} must be ${expected}, got ${describe(got)}`,
  );
}

/** A bad environment variable read by `synlimit/register`. */
export function invalidEnv(variable: string, expected: string, got: string): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_INVALID_ENV",
    `${variable} must be ${expected}, got ${JSON.stringify(got)}`,
  );
}

export function usageError(message: string): SynlimitError {
  return new SynlimitError("SYNLIMIT_USAGE", message);
}

/**
 * A listener could not bind: SYNLIMIT_ADDRESS_IN_USE when another socket has
 * the address (retry elsewhere), else SYNLIMIT_INVALID_OPTION (a bad address).
 */
export function cannotListen(what: string, address: string, cause: unknown): SynlimitError {
  // `cause` may be an error passed across a worker boundary: a plain object.
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  const reason = typeof message === "string" ? message : String(cause);
  const inUse = code === "EADDRINUSE";
  return new SynlimitError(
    inUse ? "SYNLIMIT_ADDRESS_IN_USE" : "SYNLIMIT_INVALID_OPTION",
    `${what} cannot listen on ${address}: ${reason}`,
    { cause },
  );
}

/** A process synlimit started (the lab's app, a peer server, a helper) failed or never got ready. */
export function childFailed(message: string, cause?: unknown): SynlimitError {
  return new SynlimitError("SYNLIMIT_CHILD_FAILED", message, { cause });
}

/** Extra fields carried by guard errors, so callers can schedule without parsing text. */
export interface GuardErrorDetails {
  host: string;
  port: number;
  /** When the breaker will let the next try through (clock milliseconds from now). */
  retryAfterMs?: number;
}

export class GuardError extends SynlimitError {
  readonly host: string;
  readonly port: number;
  readonly retryAfterMs: number | undefined;
  constructor(
    code: SynlimitCode,
    message: string,
    details: GuardErrorDetails,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = "GuardError";
    this.host = details.host;
    this.port = details.port;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The breaker for a destination is open: failing fast instead of holding a connect slot. */
export function breakerOpen(endpoint: Endpoint, retryAfterMs: number): GuardError {
  return new GuardError(
    "SYNLIMIT_BREAKER_OPEN",
    `not connecting to ${formatEndpoint(endpoint)}: it has been failing; next try in ${Math.round(retryAfterMs)} ms`,
    { ...endpoint, retryAfterMs },
  );
}

/** The preflight found the peer dead, so no TCP attempt was made. */
export function preflightFailed(
  endpoint: Endpoint,
  outcome: string,
  retryAfterMs: number,
): GuardError {
  return new GuardError(
    "SYNLIMIT_PREFLIGHT_FAILED",
    `not connecting to ${formatEndpoint(endpoint)}: preflight ${outcome}; next try in ${Math.round(retryAfterMs)} ms`,
    { ...endpoint, retryAfterMs },
  );
}

/** The guard's own connect deadline ended the attempt (and its SYN_SENT). */
export function connectTimeout(endpoint: Endpoint, afterMs: number): GuardError {
  return new GuardError(
    "SYNLIMIT_CONNECT_TIMEOUT",
    `connect to ${formatEndpoint(endpoint)} timed out after ${Math.round(afterMs)} ms (guard deadline)`,
    endpoint,
  );
}

/**
 * The probe cannot answer: why, and what would make it testable. The probe
 * returns it as its "could not test" result (CLI exit 2); it escapes only
 * from internal steps.
 */
export class CannotTest extends SynlimitError {
  constructor(message: string, options?: ErrorOptions) {
    super("SYNLIMIT_CANNOT_TEST", message, options);
    this.name = "CannotTest";
  }
}

/** A listener's address is taken (EADDRINUSE) or not ours to bind (EACCES, EADDRNOTAVAIL). */
export function addressInUse(
  what: string,
  where: Endpoint | string,
  cause: { code?: string } | undefined,
): SynlimitError {
  const code = cause?.code ?? "error";
  const why = code === "EADDRINUSE" ? "already in use" : `cannot be bound (${code})`;
  const at = typeof where === "string" ? where : formatEndpoint(where);
  return new SynlimitError("SYNLIMIT_ADDRESS_IN_USE", `${what} ${at} ${why}`, { cause });
}

/**
 * An HTTP answer with its status (the admin API): the message goes to the
 * client as JSON, the status on the response line.
 */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

export function aborted(what: string, reason?: unknown): SynlimitError {
  return new SynlimitError("SYNLIMIT_ABORTED", `${what} aborted`, { cause: reason });
}

export interface Endpoint {
  host: string;
  port: number;
}

/** An error shaped like the one Node raises for a failed `connect(2)`. */
export interface EmulatedOsError extends Error {
  code: string;
  errno: number;
  syscall: "connect";
  address: string;
  port: number;
  reason: SynlimitCode;
}

function osError(
  errnoName: "ETIMEDOUT" | "ECONNREFUSED",
  message: string,
  endpoint: Endpoint,
  reason: SynlimitCode,
): EmulatedOsError {
  const err = new Error(message) as EmulatedOsError;
  err.code = errnoName;
  // Node reports errno as the negative libuv value on Unix.
  err.errno = -osConstants.errno[errnoName];
  err.syscall = "connect";
  err.address = endpoint.host;
  err.port = endpoint.port;
  err.reason = reason;
  return err;
}

/** The text Windows (WSAETIMEDOUT, 10060) gives when the SYN is never answered. */
export const WINDOWS_TIMEOUT_TEXT =
  "A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond.";

/** The deadline of an emulated OS profile ended a pending attempt. */
export function emulatedTimeout(
  endpoint: Endpoint,
  profile: "windows" | "linux" | "fixed" | "schedule",
  afterMs: number,
): EmulatedOsError {
  const where = `${formatEndpoint(endpoint)}`;
  const message =
    profile === "windows"
      ? `${WINDOWS_TIMEOUT_TEXT} ${where}`
      : `connect ETIMEDOUT ${where} (emulated ${profile} connect timeout after ${Math.round(afterMs)} ms)`;
  return osError("ETIMEDOUT", message, endpoint, "SYNLIMIT_EMULATED_TIMEOUT");
}

/** The limiter's `reject` policy refused an attempt over the limit. */
export function attemptRejected(
  endpoint: Endpoint,
  maxInFlight: number,
  scopeKey: string,
): EmulatedOsError {
  return osError(
    "ECONNREFUSED",
    `connect ECONNREFUSED ${formatEndpoint(endpoint)} (synlimit: refused, ${maxInFlight} concurrent connect attempt(s) already in flight for ${scopeKey})`,
    endpoint,
    "SYNLIMIT_ATTEMPT_REJECTED",
  );
}

export function formatEndpoint({ host, port }: Endpoint): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value == null) {
    return String(value);
  }
  if (typeof value === "function") return "a function";
  return Object.prototype.toString.call(value);
}

/** A ReconnectingLink's written bytes did not drain in time: the peer stopped ACKing. */
export function linkStalled(endpoint: Endpoint, afterMs: number): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_LINK_STALLED",
    `no progress writing to ${formatEndpoint(endpoint)} for ${Math.round(afterMs)} ms; reconnecting`,
  );
}

/** The connected peer's host stopped answering the link's liveness probes (UDP echo). */
export function linkPeerSilent(endpoint: Endpoint, misses: number): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_LINK_STALLED",
    misses === 1
      ? `${formatEndpoint(endpoint)}: a liveness probe went unanswered; reconnecting`
      : `${formatEndpoint(endpoint)}: ${misses} liveness probes in a row went unanswered; reconnecting`,
  );
}

/** Written bytes the kernel keeps retransmitting: the peer acknowledges nothing. */
export function linkUnacknowledged(
  endpoint: Endpoint,
  afterMs: number,
  bytes: number,
): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_LINK_STALLED",
    `${formatEndpoint(endpoint)} acknowledged none of ${bytes} sent bytes for ${Math.round(afterMs)} ms; reconnecting`,
  );
}

/** A trace line that is not a `record` attempt: file and line number say where. */
export function invalidTrace(where: string, line: number, problem: string): SynlimitError {
  return new SynlimitError("SYNLIMIT_INVALID_TRACE", `${where}:${line}: ${problem}`);
}

/** A packet capture that cannot be read: the byte offset says where it broke. */
export function invalidCapture(where: string, offset: number, problem: string): SynlimitError {
  return new SynlimitError("SYNLIMIT_INVALID_CAPTURE", `${where}: ${problem} (at byte ${offset})`);
}

/**
 * A command needs packages a library install leaves out (the lab's database
 * and directory clients, the chart renderer): which, and how to add them.
 */
export function missingPackages(command: string, packages: readonly string[]): SynlimitError {
  return new SynlimitError(
    "SYNLIMIT_MISSING_PACKAGE",
    `synlimit ${command} needs ${packages.join(", ")}, not installed with the library: npm install ${packages.join(" ")}`,
  );
}
