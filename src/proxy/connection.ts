import type net from "node:net";
import type { Clock, Timer } from "../clock.js";
import type { FifoDeadlines } from "../deadlines.js";
import { formatEndpoint } from "../errors.js";
import type { Credentials } from "./credentials.js";
import {
  connectEstablished,
  encodeForwardHead,
  encodeResponse,
  type HttpProxyRequest,
  parseBasicCredentials,
  parseHttpHead,
} from "./http-parser.js";
import type { ClientErrorCode } from "./metrics.js";
import type { ParseResult } from "./parse-result.js";
import {
  encodeAuthStatus,
  encodeMethod,
  encodeReply,
  Method,
  maxGreetingBytes,
  maxRequestBytes,
  maxUserPassBytes,
  parseGreeting,
  parseRequest,
  parseUserPass,
  Rep,
  type SocksFailure,
} from "./socks5-parser.js";
import type { DialOutcome, FailureKind } from "./upstream.js";

export type Protocol = "socks5" | "http-connect" | "http-forward";

export interface ClientRequest {
  readonly protocol: Protocol;
  readonly host: string;
  readonly port: number;
  /** The authenticated (or, without auth, declared) user, if any. */
  readonly username: string | undefined;
}

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly clock: Clock;
  /** Every client's handshake deadline (one duration, so one timer). */
  readonly handshakes: FifoDeadlines<Connection>;
  readonly maxHeaderBytes: number;
  readonly credentials: Credentials | null;
  /**
   * The listener's own address when it is one address (not a wildcard):
   * then every client's local end is known without a getsockname call.
   */
  readonly listening: { readonly address: string; readonly port: number } | null;
  /**
   * Resolves, gates and dials, and calls `done` once (perhaps before it
   * returns); `cancel` ends a dial not yet settled.
   */
  dial(
    conn: Connection,
    request: ClientRequest,
    cancel: DialCancel,
    done: (outcome: DialOutcome) => void,
  ): void;
  clientError(conn: Connection, phase: string, reason: string, code: ClientErrorCode): void;
  tunnelOpened(conn: Connection): void;
  tunnelClosed(conn: Connection): void;
  closed(conn: Connection): void;
}

type Phase =
  | "start"
  | "greeting"
  | "auth"
  | "request"
  | "http"
  | "dialing"
  | "tunnel"
  | "closing"
  | "closed";

// While a dial is in progress the client's early bytes (an HTTP body, TLS
// ClientHello) wait here; past this the client is paused, so a dial that
// queues for 21 s cannot be made to buffer without bound.
const EARLY_DATA_LIMIT = 64 * 1024;
// A failure reply is followed by a close; a client that does not close its
// end is cut off after this.
const LINGER_MS = 2_000;

let nextClientId = 1;

/**
 * How a client that went away stops its dial. An AbortController would do,
 * but it is an EventTarget made per client, on the path every setup takes.
 */
export class DialCancel {
  #cancelled = false;
  #onCancel: (() => void) | null = null;

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Runs `fn` on cancel (at once if already cancelled); one listener, the dial's. */
  onCancel(fn: (() => void) | null): void {
    this.#onCancel = fn;
    if (fn && this.#cancelled) this.cancel();
  }

  cancel(): void {
    this.#cancelled = true;
    const fn = this.#onCancel;
    this.#onCancel = null;
    fn?.();
  }
}

const socksReply: Record<FailureKind, number> = {
  denied: Rep.notAllowed,
  "invalid-host": Rep.hostUnreachable,
  refused: Rep.connectionRefused,
  rejected: Rep.connectionRefused,
  "host-unreachable": Rep.hostUnreachable,
  "network-unreachable": Rep.networkUnreachable,
  timeout: Rep.ttlExpired,
  failed: Rep.generalFailure,
  cancelled: Rep.generalFailure,
  reset: Rep.generalFailure,
  // SOCKS5 has no "try later": the server's own failure is the closest.
  overloaded: Rep.generalFailure,
};

const httpStatus: Record<FailureKind, number> = {
  denied: 403,
  "invalid-host": 400,
  refused: 502,
  rejected: 502,
  "host-unreachable": 502,
  "network-unreachable": 502,
  timeout: 504,
  failed: 502,
  cancelled: 502,
  reset: 503,
  overloaded: 503,
};

const failureText: Record<FailureKind, string> = {
  denied: "not allowed by the proxy's rules",
  "invalid-host": "not a valid host name or address",
  refused: "connection refused",
  rejected: "refused: connect attempt limit reached",
  "host-unreachable": "host unreachable",
  "network-unreachable": "network unreachable",
  timeout: "connect attempt timed out",
  failed: "connect failed",
  cancelled: "cancelled",
  reset: "attempt ended by the operator",
  overloaded: "the proxy is out of file descriptors; try again later",
};

const retryLater: ReadonlyArray<readonly [string, string]> = [["Retry-After", "1"]];

/**
 * One client of the proxy, from accept to close: detects the protocol from
 * the first byte, runs the handshake under a deadline, hands the request to
 * the server's gated dial, answers, and then only pipes bytes.
 */
export class Connection {
  readonly id = nextClientId++;
  readonly socket: net.Socket;
  // Read on first use: each is a getpeername/getsockname system call, and
  // most identities never need them.
  #remoteAddress: string | undefined;
  #remotePort: number | undefined;
  protocol: Protocol | null = null;
  #phase: Phase = "start";
  #buf: Buffer = Buffer.alloc(0);
  #linger: Timer | null = null;
  #username: string | undefined;
  #cancel: DialCancel | null = null;
  #upstream: net.Socket | null = null;
  readonly #host: ConnectionHost;

  constructor(socket: net.Socket, host: ConnectionHost) {
    this.socket = socket;
    this.#host = host;
    // TCP_NODELAY is already set (the server's noDelay): a tunnel forwards
    // each chunk as it comes, never holding a small one back for an ACK.
    socket.on("error", () => this.#destroy());
    socket.on("close", () => this.#onClose());
    socket.on("end", () => this.#onEnd());
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    host.handshakes.add(this);
  }

  /** @internal the handshake deadline passed. */
  handshakeExpired(): void {
    this.#fail(this.#phase, "handshake deadline passed", "deadline");
  }

  get remoteAddress(): string {
    this.#remoteAddress ??= this.socket.remoteAddress ?? "";
    return this.#remoteAddress;
  }

  get remotePort(): number {
    this.#remotePort ??= this.socket.remotePort ?? 0;
    return this.#remotePort;
  }

  get localAddress(): string {
    return this.#host.listening?.address ?? this.socket.localAddress ?? "";
  }

  get localPort(): number {
    return this.#host.listening?.port ?? this.socket.localPort ?? 0;
  }

  get phase(): Phase {
    return this.#phase;
  }

  get remote(): string {
    return formatEndpoint({ host: this.remoteAddress, port: this.remotePort });
  }

  /** Closes a client the proxy will not serve (counted as a client error). */
  refuse(reason: string, code: ClientErrorCode): void {
    this.#fail("accept", reason, code);
  }

  /** Ends the client at once (proxy shutdown). */
  destroy(): void {
    this.#destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#phase === "tunnel") {
      // Client to upstream, with backpressure (the way back is in #pipe).
      const upstream = this.#upstream;
      if (upstream && !upstream.write(chunk)) {
        this.socket.pause();
        if (!this.#upstreamDrainListens) {
          this.#upstreamDrainListens = true;
          upstream.on("drain", () => this.socket.resume());
        }
      }
      return;
    }
    if (this.#phase === "closing" || this.#phase === "closed") return;
    if (this.#phase === "dialing") {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      if (this.#buf.length >= EARLY_DATA_LIMIT) this.socket.pause();
      return;
    }
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#advance();
  }

  #advance(): void {
    for (;;) {
      switch (this.#phase) {
        case "start": {
          const first = this.#buf[0];
          if (first === undefined) return;
          if (first === 0x05) {
            this.protocol = "socks5";
            this.#phase = "greeting";
          } else if (first >= 0x41 && first <= 0x5a) {
            this.protocol = "http-connect";
            this.#phase = "http";
          } else {
            this.#fail(
              "start",
              first === 0x04 ? "SOCKS 4 is not supported" : "unknown protocol",
              "malformed",
            );
            return;
          }
          break;
        }
        case "greeting": {
          const r = parseGreeting(this.#buf);
          if (!this.#handled(r, maxGreetingBytes)) return;
          if (r.kind !== "ok") return;
          this.#consume(r.consumed);
          const creds = this.#host.credentials;
          const methods = r.value.methods;
          let method: number = Method.noAcceptable;
          if (creds) {
            if (methods.includes(Method.userPass)) method = Method.userPass;
          } else if (methods.includes(Method.userPass)) {
            // No users configured: a username offered is taken as a label
            // (the `user` identity), as Tor takes it for stream isolation.
            method = Method.userPass;
          } else if (methods.includes(Method.noAuth)) {
            method = Method.noAuth;
          }
          if (method === Method.noAcceptable) {
            this.#replyAndClose(
              encodeMethod(Method.noAcceptable),
              "greeting",
              "no acceptable method",
              "malformed",
            );
            return;
          }
          this.socket.write(encodeMethod(method));
          this.#phase = method === Method.userPass ? "auth" : "request";
          break;
        }
        case "auth": {
          const r = parseUserPass(this.#buf);
          if (!this.#handled(r, maxUserPassBytes)) return;
          if (r.kind !== "ok") return;
          this.#consume(r.consumed);
          const creds = this.#host.credentials;
          if (creds && !creds.verify(r.value.username, r.value.password)) {
            this.#replyAndClose(encodeAuthStatus(false), "auth", "authentication failed", "auth");
            return;
          }
          this.#username = r.value.username;
          this.socket.write(encodeAuthStatus(true));
          this.#phase = "request";
          break;
        }
        case "request": {
          const r = parseRequest(this.#buf);
          if (!this.#handled(r, maxRequestBytes)) return;
          if (r.kind !== "ok") return;
          this.#consume(r.consumed);
          this.#startDial({
            protocol: "socks5",
            host: r.value.host,
            port: r.value.port,
            username: this.#username,
          });
          return;
        }
        case "http": {
          const r = parseHttpHead(this.#buf, this.#host.maxHeaderBytes);
          if (r.kind === "need-more") return;
          if (r.kind === "error") {
            this.#replyAndClose(
              encodeResponse(r.error.status, `synlimit: ${r.error.reason}`),
              "http",
              r.error.reason,
              r.error.status === 431 ? "too-large" : "malformed",
            );
            return;
          }
          this.#consume(r.consumed);
          this.#onHttpRequest(r.value);
          return;
        }
        default:
          return;
      }
    }
  }

  /** True when the parse may go on (ok, or need-more within the phase's size). */
  #handled<T>(r: ParseResult<T, SocksFailure>, max: number): boolean {
    if (r.kind === "ok") return true;
    if (r.kind === "need-more") {
      // Parsers never need more than their phase's maximum; this is a guard, not a path.
      if (this.#buf.length > max) this.#fail(this.#phase, "message too long", "too-large");
      return false;
    }
    const reply = r.error.reply;
    if (reply === undefined) this.#fail(this.#phase, r.error.reason, "malformed");
    else this.#replyAndClose(encodeReply(reply), this.#phase, r.error.reason, "malformed");
    return false;
  }

  #onHttpRequest(req: HttpProxyRequest): void {
    this.protocol = req.kind === "connect" ? "http-connect" : "http-forward";
    const creds = this.#host.credentials;
    const basic = parseBasicCredentials(req.proxyAuthorization);
    if (creds && !(basic && creds.verify(basic.username, basic.password))) {
      this.#replyAndClose(
        encodeResponse(407, "synlimit: proxy authentication required", [
          ["Proxy-Authenticate", 'Basic realm="synlimit"'],
        ]),
        "http",
        basic ? "authentication failed" : "no credentials",
        "auth",
      );
      return;
    }
    this.#username = basic?.username;
    this.#forwardHead = req.kind === "forward" ? encodeForwardHead(req) : null;
    this.#startDial({
      protocol: this.protocol,
      host: req.host,
      port: req.port,
      username: this.#username,
    });
  }

  #forwardHead: Buffer | null = null;

  #startDial(request: ClientRequest): void {
    this.#host.handshakes.delete(this);
    this.#phase = "dialing";
    const cancel = new DialCancel();
    this.#cancel = cancel;
    let settled = false;
    const done = (outcome: DialOutcome) => {
      if (settled) {
        if (outcome.ok) outcome.socket.destroy();
        return;
      }
      settled = true;
      this.#onDialed(request, outcome);
    };
    try {
      this.#host.dial(this, request, cancel, done);
    } catch {
      // A bug in the dial must cost this client, not the proxy.
      done({ ok: false, kind: "failed" });
    }
  }

  #onDialed(request: ClientRequest, outcome: DialOutcome): void {
    this.#cancel = null;
    if (this.#phase !== "dialing") {
      if (outcome.ok) outcome.socket.destroy();
      return;
    }
    if (!outcome.ok) {
      const where = formatEndpoint({ host: request.host, port: request.port });
      if (request.protocol === "socks5") {
        this.#replyAndClose(encodeReply(socksReply[outcome.kind]), "dial", outcome.kind, null);
      } else {
        const status = httpStatus[outcome.kind];
        this.#replyAndClose(
          encodeResponse(
            status,
            `synlimit: ${where}: ${failureText[outcome.kind]}`,
            outcome.kind === "overloaded" ? retryLater : [],
          ),
          "dial",
          outcome.kind,
          null,
        );
      }
      return;
    }
    const upstream = outcome.socket;
    this.#upstream = upstream;
    this.#phase = "tunnel";
    if (request.protocol === "socks5") {
      this.socket.write(
        encodeReply(Rep.succeeded, {
          host: upstream.localAddress ?? "",
          port: upstream.localPort ?? 0,
        }),
      );
    } else if (request.protocol === "http-connect") {
      this.socket.write(connectEstablished);
    } else if (this.#forwardHead) {
      upstream.write(this.#forwardHead);
      this.#forwardHead = null;
    }
    if (this.#buf.length > 0) upstream.write(this.#buf);
    this.#buf = Buffer.alloc(0);
    this.#host.tunnelOpened(this);
    this.#pipe(upstream);
  }

  // What Readable.pipe does both ways, without its bookkeeping for streams
  // in general (unpipe, several destinations), which costs on every setup.
  // Client to upstream is in #onData and #onEnd.
  // Listeners are `on`, not `once` ('end' and 'close' come once anyway), and
  // the 'drain' ones are added only when a write is held back: most short
  // tunnels never need them, and every listener costs each setup.
  #pipe(upstream: net.Socket): void {
    const client = this.socket;
    upstream.on("error", () => {
      upstream.destroy();
      client.destroy();
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        if (!this.#clientDrainListens) {
          this.#clientDrainListens = true;
          client.on("drain", () => upstream.resume());
        }
      }
    });
    // Half-closes travel through; once one side is gone, the other is
    // flushed and closed.
    upstream.on("end", () => client.end());
    upstream.on("close", () => client.destroySoon());
    client.resume();
  }

  #clientDrainListens = false;
  #upstreamDrainListens = false;

  #onEnd(): void {
    if (this.#phase === "tunnel") {
      this.#upstream?.end();
      return;
    }
    if (this.#phase === "closing") {
      this.#destroy();
      return;
    }
    // Before the tunnel exists, an ending client has gone away: stop its dial.
    this.#destroy();
  }

  #consume(n: number): void {
    this.#buf = this.#buf.subarray(n);
  }

  #fail(phase: string, reason: string, code: ClientErrorCode): void {
    if (this.#phase === "closed" || this.#phase === "closing") return;
    this.#host.clientError(this, phase, reason, code);
    this.#destroy();
  }

  /**
   * Sends a last reply, then closes once the client has read it (or after a
   * linger). `code` null: not the client's error (a failed dial).
   */
  #replyAndClose(reply: Buffer, phase: string, reason: string, code: ClientErrorCode | null): void {
    if (this.#phase === "closed" || this.#phase === "closing") return;
    if (code !== null) this.#host.clientError(this, phase, reason, code);
    this.#phase = "closing";
    this.#host.handshakes.delete(this);
    this.#buf = Buffer.alloc(0);
    this.socket.end(reply);
    this.socket.resume();
    this.#linger = this.#host.clock.setTimer(() => {
      this.#linger = null;
      this.#destroy();
    }, LINGER_MS);
  }

  #destroy(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#host.handshakes.delete(this);
    this.#linger?.cancel();
    this.#linger = null;
    this.#cancel?.cancel();
    this.#cancel = null;
    this.#buf = Buffer.alloc(0);
    this.socket.destroy();
    this.#upstream?.destroy();
  }

  #onClose(): void {
    const upstream = this.#upstream;
    if (this.#phase === "tunnel" && upstream) {
      // A clean close: what the client sent may still be on its way upstream.
      this.#phase = "closed";
      upstream.destroySoon();
    } else {
      this.#destroy();
    }
    if (upstream) this.#host.tunnelClosed(this);
    this.#host.closed(this);
  }
}
