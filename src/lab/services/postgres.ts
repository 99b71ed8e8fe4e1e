import { once } from "node:events";
import net from "node:net";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { invalidOption } from "../../errors.js";
import { makeTempDir, type RealService, removeDir } from "./process.js";

export interface EmbeddedPostgresOptions {
  /** Default 0: any free port. Always on 127.0.0.1. */
  port?: number;
  /**
   * Client connections served at once (default 16); more are refused with
   * PostgreSQL's "too many connections" error. Keep it at least the pool's `max`.
   */
  maxConnections?: number;
}

const HOST = "127.0.0.1";
const DEFAULT_MAX_CONNECTIONS = 16;

// initdb is most of PGlite's start-up (seconds); later instances in the same
// process start from a copy of the first one's fresh data directory instead.
let freshDataDir: Promise<Blob> | null = null;

/**
 * PGlite, a single-session PostgreSQL compiled to WASM, served over TCP by
 * pglite-socket. PGlite has one backend, so pglite-socket multiplexes: the
 * connections' protocol messages take turns on it, a transaction's
 * statements kept together. A pg Pool sees ordinary connections whose
 * queries run one at a time — all the lab needs: pooled connections that do
 * not open a TCP connection per query.
 *
 * That one backend is also why clients do not reach pglite-socket directly.
 * Input a real server answers with FATAL and a closed session (a malformed
 * startup packet, an unknown message type) kills or spins PGlite's only
 * backend, blocking the event loop of the whole process. A front on the TCP
 * port checks the framing and message types and closes offenders with
 * PostgreSQL's protocol_violation error; what passes goes to pglite-socket
 * on a Unix socket, which the connect-attempt limiter does not see.
 *
 * Authentication is not checked: any user name and password are accepted.
 */
export class EmbeddedPostgres implements RealService {
  readonly host = HOST;
  readonly port: number;
  readonly url: string;
  /** Milliseconds `listen()` took, PGlite's start-up included. */
  readonly startupMs: number;
  /** Connections closed because what arrived was not the PostgreSQL protocol. */
  protocolErrors = 0;
  readonly #db: PGlite;
  readonly #backend: PGLiteSocketServer;
  readonly #front: net.Server;
  readonly #dir: string;
  readonly #sockets = new Set<net.Socket>();
  #sessions = 0;
  #closed: Promise<void> | null = null;

  private constructor(parts: {
    db: PGlite;
    backend: PGLiteSocketServer;
    front: net.Server;
    dir: string;
    startupMs: number;
  }) {
    this.#db = parts.db;
    this.#backend = parts.backend;
    this.#front = parts.front;
    this.#dir = parts.dir;
    this.port = (parts.front.address() as net.AddressInfo).port;
    this.url = `postgres://postgres:postgres@${HOST}:${this.port}/postgres`;
    this.startupMs = parts.startupMs;
  }

  static async listen(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
    const { port, maxConnections } = validate(options);
    const started = performance.now();
    const dir = await makeTempDir("pglite");
    const path = join(dir, ".s.PGSQL");
    let db: PGlite | undefined;
    let backend: PGLiteSocketServer | undefined;
    const front = net.createServer();
    try {
      db = await createDb();
      // Slack on the inside: a closed client's inner connection is released asynchronously.
      backend = new PGLiteSocketServer({ db, path, maxConnections: 2 * maxConnections });
      await backend.start();
      front.listen({ host: HOST, port });
      await once(front, "listening");
    } catch (error) {
      front.close();
      await backend?.stop();
      await db?.close();
      await removeDir(dir);
      throw error;
    }
    const pg = new EmbeddedPostgres({
      db,
      backend,
      front,
      dir,
      startupMs: performance.now() - started,
    });
    front.on("connection", (socket) => {
      // Tracked even when refused: a client that never closes its side would
      // otherwise keep the listener from closing.
      pg.#sockets.add(socket);
      socket.once("close", () => pg.#sockets.delete(socket));
      socket.on("error", () => {});
      if (pg.#sessions < maxConnections) return pg.#onConnection(socket, path);
      socket.end(errorResponse("53300", "sorry, too many clients already"));
    });
    return pg;
  }

  #onConnection(client: net.Socket, path: string): void {
    this.#sessions++;
    client.setNoDelay(true);
    let inner: net.Socket | null = null;
    const closeBoth = () => {
      client.destroy();
      inner?.destroy();
    };
    client.once("close", () => {
      this.#sessions--;
      inner?.destroy();
    });
    let started = false;
    let buffered: Buffer = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      // Bytes after a Terminate, a CancelRequest or a violation are not read.
      if (client.writableEnded) return;
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      for (;;) {
        const step = started ? readMessage(buffered) : readStartup(buffered);
        if (step.kind === "incomplete") return;
        if (step.kind === "invalid") {
          this.protocolErrors++;
          inner?.destroy();
          client.end(errorResponse("08P01", step.reason));
          return;
        }
        const bytes = buffered.subarray(0, step.length);
        buffered = buffered.subarray(step.length);
        if (step.kind === "no-ssl") {
          client.write("N");
          continue;
        }
        if (step.kind === "cancel") {
          // PGlite has no backend process to interrupt; the protocol expects no reply.
          client.end();
          return;
        }
        if (step.kind === "startup") {
          started = true;
          inner = net.connect({ path });
          inner.on("error", () => {});
          inner.once("close", () => client.end());
          inner.pipe(client);
        }
        inner?.write(bytes);
        if (step.kind === "terminate") {
          inner?.end();
          return;
        }
      }
    });
    client.once("end", closeBoth);
  }

  /** Closes every client connection, the listener and the database. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const socket of this.#sockets) socket.destroy();
      await new Promise<void>((resolve) => this.#front.close(() => resolve()));
      await this.#backend.stop();
      // stop() detaches connections without waiting; a detach may still
      // roll back an open transaction, which needs the database open.
      await new Promise((resolve) => setImmediate(resolve));
      await this.#db.close();
      await removeDir(this.#dir);
    })();
    return this.#closed;
  }
}

async function createDb(): Promise<PGlite> {
  if (!freshDataDir) {
    const db = await PGlite.create();
    const dump = db.dumpDataDir("none");
    freshDataDir = dump;
    await dump.catch(() => {
      freshDataDir = null;
    });
    return db;
  }
  const loadDataDir = await freshDataDir.catch(() => undefined);
  return PGlite.create(loadDataDir ? { loadDataDir } : {});
}

type Step =
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  | { kind: "startup" | "no-ssl" | "cancel" | "message" | "terminate"; length: number };

const PROTOCOL_3_0 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
// PostgreSQL's own limit (MAX_STARTUP_PACKET_LENGTH).
const MAX_STARTUP_BYTES = 10_000;
// The lab's statements are tiny; this only bounds what one client can make us buffer.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
// Frontend message types PostgresMain accepts after startup. 'p' (password) is
// not among them: PGlite never asks for one, and an unsolicited one is FATAL.
const MESSAGE_TYPES = new Set("BCcdDEFfHPQSX");

function readStartup(buf: Buffer): Step {
  if (buf.length < 8) return { kind: "incomplete" };
  const length = buf.readInt32BE(0);
  const code = buf.readInt32BE(4);
  if (length < 8 || length > MAX_STARTUP_BYTES) {
    return { kind: "invalid", reason: "invalid length of startup packet" };
  }
  if ((code === SSL_REQUEST || code === GSSENC_REQUEST) && length === 8) {
    return { kind: "no-ssl", length };
  }
  if (code === CANCEL_REQUEST && length === 16) {
    return buf.length < 16 ? { kind: "incomplete" } : { kind: "cancel", length };
  }
  if (code !== PROTOCOL_3_0) return { kind: "invalid", reason: "unsupported frontend protocol" };
  if (buf.length < length) return { kind: "incomplete" };
  const fields = buf.subarray(8, length).toString("latin1").split("\0");
  // "key\0value\0...\0\0" splits into pairs, then two empty strings.
  const pairs = fields.slice(0, -2);
  const wellFormed =
    fields.length >= 2 &&
    fields.at(-1) === "" &&
    fields.at(-2) === "" &&
    pairs.length % 2 === 0 &&
    pairs.every((field, i) => i % 2 === 1 || field !== "");
  if (!wellFormed) return { kind: "invalid", reason: "invalid startup packet layout" };
  if (!pairs.some((field, i) => i % 2 === 0 && field === "user")) {
    return { kind: "invalid", reason: "no PostgreSQL user name specified in startup packet" };
  }
  return { kind: "startup", length };
}

function readMessage(buf: Buffer): Step {
  if (buf.length < 5) return { kind: "incomplete" };
  const type = String.fromCharCode(buf[0] as number);
  if (!MESSAGE_TYPES.has(type)) {
    return { kind: "invalid", reason: `invalid frontend message type ${buf[0]}` };
  }
  const length = buf.readInt32BE(1);
  if (length < 4 || length > MAX_MESSAGE_BYTES) {
    return { kind: "invalid", reason: "invalid message length" };
  }
  if (buf.length < 1 + length) return { kind: "incomplete" };
  return { kind: type === "X" ? "terminate" : "message", length: 1 + length };
}

/** A FATAL ErrorResponse, as PostgreSQL sends before closing a session. */
function errorResponse(sqlState: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlState}\0M${message}\0\0`, "utf8");
  const header = Buffer.alloc(5);
  header.write("E", 0, "latin1");
  header.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([header, fields]);
}

function validate(options: EmbeddedPostgresOptions): Required<EmbeddedPostgresOptions> {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", "an object", options);
  }
  const { port = 0, maxConnections = DEFAULT_MAX_CONNECTIONS } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption("port", "an integer from 0 to 65535", port);
  }
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    throw invalidOption("maxConnections", "a positive integer", maxConnections);
  }
  return { port, maxConnections };
}
