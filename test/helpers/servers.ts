import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url));

/** A self-signed certificate for localhost and 127.0.0.1, for test servers only. */
export const testCert = { key: fixture("localhost.key"), cert: fixture("localhost.crt") };

interface Closable {
  close(): Promise<void>;
}

/** Tracks accepted sockets so close() never waits on a keep-alive client. */
abstract class Fixture<S extends net.Server> implements Closable {
  readonly sockets = new Set<net.Socket>();
  accepted = 0;
  port = 0;
  constructor(readonly server: S) {
    server.on(server instanceof tls.Server ? "secureConnection" : "connection", (s: net.Socket) => {
      this.accepted++;
      this.sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => this.sockets.delete(s));
    });
  }

  async listen(port = 0): Promise<this> {
    this.server.listen(port, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Answers every HTTP request with 200 "ok". */
export class HttpFixture extends Fixture<http.Server> {
  constructor() {
    super(http.createServer((_req, res) => res.end("ok")));
  }
}

export class HttpsFixture extends Fixture<https.Server> {
  constructor() {
    super(https.createServer(testCert, (_req, res) => res.end("ok")));
  }
}

/** A TLS server that writes "hello" to each client. */
export class TlsFixture extends Fixture<tls.Server> {
  constructor() {
    super(tls.createServer(testCert, (s) => s.end("hello")));
  }
}

/**
 * Just enough LDAPv3 for a simple bind: every BindRequest gets a success
 * BindResponse with the same message ID, UnbindRequest closes. The embedded
 * stand-in for a directory server's login path.
 */
export class LdapBindFixture extends Fixture<net.Server> {
  binds = 0;
  constructor() {
    super(net.createServer());
    this.server.on("connection", (socket) => {
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const message = readBerElement(buffered, 0);
          if (!message) break;
          buffered = buffered.subarray(message.end);
          const id = readBerElement(message.content, 0);
          const op = id ? message.content[id.end] : undefined;
          if (!id || op === undefined) return socket.destroy();
          if (op === 0x42) return socket.end(); // UnbindRequest
          if (op === 0x60) {
            this.binds++;
            const idTlv = message.content.subarray(0, id.end);
            const bindResponse = Buffer.from([
              0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ]);
            const body = Buffer.concat([idTlv, bindResponse]);
            socket.write(Buffer.concat([Buffer.from([0x30, body.length]), body]));
          }
        }
      });
    });
  }
}

function readBerElement(buf: Buffer, at: number): { content: Buffer; end: number } | null {
  if (buf.length < at + 2) return null;
  let length = buf[at + 1] as number;
  let offset = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (buf.length < offset + n) return null;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (buf[offset + i] as number);
    offset += n;
  }
  if (buf.length < offset + length) return null;
  return { content: buf.subarray(offset, offset + length), end: offset + length };
}

/**
 * Just enough of the PostgreSQL wire protocol for pg to connect: the startup
 * message is answered with AuthenticationOk and ReadyForQuery; Terminate
 * closes.
 */
export class PgStartupFixture extends Fixture<net.Server> {
  startups = 0;
  constructor() {
    super(net.createServer());
    this.server.on("connection", (socket) => {
      let started = false;
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (!started) {
          if (buffered.length < 4) return;
          const len = buffered.readInt32BE(0);
          if (buffered.length < len) return;
          buffered = buffered.subarray(len);
          started = true;
          this.startups++;
          const authOk = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
          const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
          socket.write(Buffer.concat([authOk, ready]));
        }
        if (buffered.includes(0x58)) socket.end(); // Terminate
      });
    });
  }
}
