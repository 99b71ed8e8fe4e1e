import { randomBytes, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { formatEndpoint, invalidOption, SynlimitError } from "../../errors.js";
import { isLoopbackAddress } from "../../loopback.js";
import type { RealService } from "./process.js";

export interface EmbeddedLdapOptions {
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /**
   * Bind DN → password. The first entry is the default login (`bindDN`,
   * `password`). Default: cn=login,dc=synlimit,dc=test with a random password.
   */
  users?: Record<string, string>;
}

const DEFAULT_BIND_DN = "cn=login,dc=synlimit,dc=test";
// A bind request is a few hundred bytes; anything this large is not one, and
// buffering it would let one client grow our memory without bound.
const MAX_MESSAGE_BYTES = 64 * 1024;
const IDLE_TIMEOUT_MS = 60_000;

// RFC 4511 protocolOp tags (APPLICATION class).
const BIND_REQUEST = 0x60;
const BIND_RESPONSE = 0x61;
const UNBIND_REQUEST = 0x42;
const ABANDON_REQUEST = 0x50;
const EXTENDED_REQUEST = 0x77;
const EXTENDED_RESPONSE = 0x78;
/** Request tag → response tag, for the operations answered with an error. */
const REFUSED_OPERATIONS = new Map([
  [0x63, 0x65], // search → searchResDone
  [0x66, 0x67], // modify
  [0x68, 0x69], // add
  [0x4a, 0x6b], // delete
  [0x6c, 0x6d], // modifyDN
  [0x6e, 0x6f], // compare
  [EXTENDED_REQUEST, EXTENDED_RESPONSE],
]);

// RFC 4511 resultCodes.
const SUCCESS = 0;
const PROTOCOL_ERROR = 2;
const AUTH_METHOD_NOT_SUPPORTED = 7;
const INAPPROPRIATE_AUTHENTICATION = 48;
const INVALID_CREDENTIALS = 49;
const UNWILLING_TO_PERFORM = 53;

/**
 * Just enough LDAPv3 to stand in for the directory behind the incident's
 * logins: simple binds checked against a table, unbind, and a proper error
 * for every other operation. Every login opens a fresh TCP connection to it,
 * as `ADsOpenObject` did. Bytes that are not LDAP end the connection, never
 * the server.
 */
export class EmbeddedLdap implements RealService {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly bindDN: string;
  /** Binds that succeeded. */
  binds = 0;
  /** Binds answered with an error (wrong DN or password, unsupported method). */
  failedBinds = 0;
  /** Connections closed because what arrived was not LDAP. */
  protocolErrors = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  // Private: credentials stay out of JSON.stringify, spread and util.inspect.
  readonly #users: Map<string, Buffer>;
  readonly #password: string;
  #closed: Promise<void> | null = null;

  private constructor(server: net.Server, users: Map<string, string>) {
    this.#server = server;
    const { address, port } = server.address() as net.AddressInfo;
    this.host = address;
    this.port = port;
    this.url = `ldap://${formatEndpoint({ host: address, port })}`;
    const [first] = users;
    [this.bindDN, this.#password] = first as [string, string];
    this.#users = new Map([...users].map(([dn, pw]) => [normalizeDn(dn), Buffer.from(pw)]));
  }

  get password(): string {
    return this.#password;
  }

  static async listen(options: EmbeddedLdapOptions = {}): Promise<EmbeddedLdap> {
    const { host, port, users } = validate(options);
    const server = net.createServer();
    server.listen({ host, port });
    await once(server, "listening");
    const ldap = new EmbeddedLdap(server, users);
    server.on("connection", (socket) => ldap.#onConnection(socket));
    return ldap;
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => {});
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      for (;;) {
        const frame = readFrame(buffered);
        if (frame === "incomplete") return;
        if (frame === "invalid") {
          this.protocolErrors++;
          socket.destroy();
          return;
        }
        buffered = buffered.subarray(frame.end);
        if (!this.#onMessage(socket, frame.content)) return;
      }
    });
  }

  /** Handles one LDAPMessage; false when the connection is done. */
  #onMessage(socket: net.Socket, message: Buffer): boolean {
    const id = readTlv(message, 0);
    const messageId = id && id.tag === 0x02 ? readMessageId(id.value) : null;
    const op = id && messageId !== null ? readTlv(message, id.end) : null;
    if (!op || messageId === null) {
      this.protocolErrors++;
      socket.destroy();
      return false;
    }
    if (op.tag === UNBIND_REQUEST) {
      socket.end();
      return false;
    }
    if (op.tag === ABANDON_REQUEST) return true; // never answered, per RFC 4511 §4.11
    if (op.tag === BIND_REQUEST) {
      const code = this.#bind(op.value);
      if (code === SUCCESS) this.binds++;
      else this.failedBinds++;
      socket.write(encodeMessage(messageId, result(BIND_RESPONSE, code)));
      return true;
    }
    const responseTag = REFUSED_OPERATIONS.get(op.tag);
    if (responseTag === undefined) {
      // Not a request we can name a response for: say so once, then hang up.
      this.protocolErrors++;
      socket.end(noticeOfDisconnection());
      return false;
    }
    socket.write(
      encodeMessage(
        messageId,
        result(responseTag, UNWILLING_TO_PERFORM, "only simple bind is supported"),
      ),
    );
    return true;
  }

  /** The resultCode for a BindRequest body. */
  #bind(body: Buffer): number {
    const version = readTlv(body, 0);
    const name = version && readTlv(body, version.end);
    const auth = name && readTlv(body, name.end);
    if (!version || !name || !auth || version.tag !== 0x02 || name.tag !== 0x04) {
      return PROTOCOL_ERROR;
    }
    if (version.value.length !== 1 || version.value[0] !== 3) return PROTOCOL_ERROR;
    if (auth.tag !== 0x80) return AUTH_METHOD_NOT_SUPPORTED; // [0] simple; [3] is SASL
    const dn = name.value.toString("utf8");
    const password = auth.value;
    // Anonymous binds are refused as RFC 4513 §5.1.1 suggests: they are not logins.
    if (dn === "" && password.length === 0) return INAPPROPRIATE_AUTHENTICATION;
    // RFC 4513 §5.1.2: a DN with an empty password is an "unauthenticated"
    // bind, which servers must not treat as a successful login.
    if (password.length === 0) return UNWILLING_TO_PERFORM;
    const expected = this.#users.get(normalizeDn(dn));
    if (!expected || expected.length !== password.length) return INVALID_CREDENTIALS;
    return timingSafeEqual(expected, password) ? SUCCESS : INVALID_CREDENTIALS;
  }

  /** Destroys every connection and closes the listener. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const socket of this.#sockets) socket.destroy();
      if (!this.#server.listening) return;
      await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    })();
    return this.#closed;
  }
}

interface Tlv {
  tag: number;
  value: Buffer;
  end: number;
}

/**
 * One BER element at `at`, definite lengths only (LDAP forbids the
 * indefinite form). Null when the bytes are short or malformed.
 */
function readTlv(buf: Buffer, at: number): Tlv | null {
  const header = readHeader(buf, at);
  if (header === "incomplete" || header === "invalid") return null;
  const end = header.start + header.length;
  if (end > buf.length) return null;
  return { tag: header.tag, value: buf.subarray(header.start, end), end };
}

type Header = { tag: number; start: number; length: number } | "incomplete" | "invalid";

function readHeader(buf: Buffer, at: number): Header {
  if (buf.length < at + 2) return "incomplete";
  const tag = buf[at] as number;
  // High-tag-number form (low five bits all set) is never used by LDAP.
  if ((tag & 0x1f) === 0x1f) return "invalid";
  const first = buf[at + 1] as number;
  if (first < 0x80) return { tag, start: at + 2, length: first };
  const count = first & 0x7f;
  if (count === 0 || count > 4) return "invalid";
  if (buf.length < at + 2 + count) return "incomplete";
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (buf[at + 2 + i] as number);
  return { tag, start: at + 2 + count, length };
}

/** The next LDAPMessage SEQUENCE in a connection's byte stream. */
function readFrame(buf: Buffer): { content: Buffer; end: number } | "incomplete" | "invalid" {
  if (buf.length === 0) return "incomplete";
  if (buf[0] !== 0x30) return "invalid";
  const header = readHeader(buf, 0);
  if (header === "incomplete" || header === "invalid") return header;
  if (header.length > MAX_MESSAGE_BYTES) return "invalid";
  const end = header.start + header.length;
  if (buf.length < end) return "incomplete";
  return { content: buf.subarray(header.start, end), end };
}

/** MessageID ::= INTEGER (0 .. 2^31-1); null when out of range or malformed. */
function readMessageId(value: Buffer): number | null {
  if (value.length === 0 || value.length > 4 || ((value[0] as number) & 0x80) !== 0) return null;
  return value.readUIntBE(0, value.length);
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

function encodeInteger(tag: number, n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  // Non-negative values keep a leading zero byte when the top bit is set.
  if (bytes.length === 0 || ((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

/** An LDAPResult-shaped response: resultCode, matchedDN "", diagnosticMessage, then `extra`. */
function result(
  tag: number,
  code: number,
  diagnostic = "",
  extra: Buffer = Buffer.alloc(0),
): Buffer {
  return tlv(
    tag,
    Buffer.concat([
      encodeInteger(0x0a, code),
      tlv(0x04, Buffer.alloc(0)),
      tlv(0x04, Buffer.from(diagnostic)),
      extra,
    ]),
  );
}

function encodeMessage(messageId: number, op: Buffer): Buffer {
  return tlv(0x30, Buffer.concat([encodeInteger(0x02, messageId), op]));
}

/** RFC 4511 §4.4.1: the unsolicited notice a server sends before dropping a confused client. */
function noticeOfDisconnection(): Buffer {
  const responseName = tlv(0x8a, Buffer.from("1.3.6.1.4.1.1466.20036"));
  const notice = result(EXTENDED_RESPONSE, PROTOCOL_ERROR, "unsupported operation", responseName);
  return encodeMessage(0, notice);
}

/**
 * Close enough to LDAP's DN matching for a lab: attribute names and the
 * values of cn/dc/ou compare case-insensitively, and spaces around the
 * separators do not count.
 */
function normalizeDn(dn: string): string {
  return dn
    .trim()
    .replace(/(?<!\\)\s*([,=+])\s*/g, "$1")
    .toLowerCase();
}

function validate(options: EmbeddedLdapOptions): {
  host: string;
  port: number;
  users: Map<string, string>;
} {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", "an object", options);
  }
  const { host = "127.0.0.1", port = 0, users } = options;
  // Loopback only: the credential table is a lab's, not fit to be reachable from elsewhere.
  if (typeof host !== "string" || !isLoopbackAddress(host)) {
    throw invalidOption("host", "a loopback IP address", host);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption("port", "an integer from 0 to 65535", port);
  }
  if (users === undefined) {
    return {
      host,
      port,
      users: new Map([[DEFAULT_BIND_DN, randomBytes(12).toString("hex")]]),
    };
  }
  if (typeof users !== "object" || users === null || Object.keys(users).length === 0) {
    throw invalidOption("users", "an object mapping at least one bind DN to a password", users);
  }
  const table = new Map<string, string>();
  for (const [dn, password] of Object.entries(users)) {
    if (dn.trim() === "") throw invalidOption("users", "non-empty bind DNs", dn);
    if (typeof password !== "string" || password === "") {
      // Not through invalidOption: the message must not echo a password.
      throw new SynlimitError(
        "SYNLIMIT_INVALID_OPTION",
        `option users[${JSON.stringify(dn)}] must be a non-empty string password`,
      );
    }
    table.set(dn, password);
  }
  return { host, port, users: table };
}
