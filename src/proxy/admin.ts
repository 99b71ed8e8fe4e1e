import { createHash, timingSafeEqual } from "node:crypto";
import { chmodSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { formatEndpoint, HttpError, invalidOption, SynlimitError } from "../errors.js";
import { isLoopbackAddress, isLoopbackHost } from "../loopback.js";
import { proxyChannels, publish } from "./channels.js";
import { listenOn } from "./listen.js";
import type { AdminTarget } from "./operations.js";
import type { NormalizedAdmin } from "./options.js";

const MAX_BODY_BYTES = 64 * 1024;

// Digests of equal length, whatever was sent: the comparison takes the same
// time for a wrong token of any length.
function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function loopback(address: string | undefined): boolean {
  return address !== undefined && isLoopbackAddress(address);
}

// A Host header must name this machine by loopback: a page that rebinds its
// own DNS name to 127.0.0.1 still sends its own name here.
function loopbackHostHeader(value: string | undefined): boolean {
  if (!value) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d{1,5})?$/.exec(value);
  if (!m?.[1]) return false;
  return isLoopbackHost(m[1]);
}

/**
 * The admin API (Toxiproxy-like, JSON over HTTP), on loopback or a Unix
 * socket only. It changes what every proxied program experiences, so it
 * refuses anything a web page could send: a browser User-Agent, any Origin
 * header, a Host that is not loopback, and state changes without a JSON
 * content type. With a token, every request must carry it
 * (`Authorization: Bearer …`); on a Unix socket, the file's mode decides
 * who may connect.
 */
export class AdminServer {
  readonly #server: http.Server;
  readonly #proxy: AdminTarget;
  readonly #token: Buffer | null;
  host = "";
  port = 0;
  /** The Unix socket's path, when it listens on one. */
  path: string | null = null;

  private constructor(proxy: AdminTarget, token: string | null) {
    this.#proxy = proxy;
    this.#token = token === null ? null : digest(token);
    this.#server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) this.#send(res, 500, { error: "internal error" });
        else res.destroy();
      });
    });
    this.#server.requestTimeout = 10_000;
    this.#server.headersTimeout = 5_000;
    this.#server.on("clientError", (_e, socket: net.Socket) => socket.destroy());
  }

  static async listen(proxy: AdminTarget, options: NormalizedAdmin): Promise<AdminServer> {
    const admin = new AdminServer(proxy, options.token);
    if (options.socketPath !== null) {
      // The socket is created with the mode asked for, not widened by the
      // umask for an instant before a chmod.
      const previous = process.umask(0o777 & ~options.socketMode);
      try {
        await listenOn(admin.#server, "admin API", { path: options.socketPath });
      } finally {
        process.umask(previous);
      }
      chmodSync(options.socketPath, options.socketMode);
      admin.path = options.socketPath;
      return admin;
    }
    const { host, port } = options;
    if (!loopback(host)) throw invalidOption("admin.host", "a loopback address", host);
    await listenOn(admin.#server, "admin API address", { host, port });
    const a = admin.#server.address() as net.AddressInfo;
    admin.host = a.address;
    admin.port = a.port;
    return admin;
  }

  get address(): string {
    return this.path ?? formatEndpoint(this);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    let status = 200;
    try {
      this.#guard(req);
      const body = await this.#readBody(req);
      const result = await this.#route(method, path, body);
      if (typeof result === "string") {
        res.writeHead(200, {
          "Content-Type": this.#proxy.metricsContentType,
          "Cache-Control": "no-store",
          "X-Content-Type-Options": "nosniff",
        });
        res.end(result);
      } else {
        status = result.status ?? 200;
        this.#send(res, status, result.body);
      }
    } catch (error) {
      if (error instanceof HttpError) status = error.status;
      else if (error instanceof SynlimitError) status = 400;
      else throw error;
      this.#send(res, status, { error: error.message });
    } finally {
      publish(proxyChannels.admin, () => ({
        method,
        path,
        status,
        remote: req.socket.remoteAddress,
      }));
    }
  }

  #guard(req: http.IncomingMessage): void {
    if (this.path === null && !loopback(req.socket.remoteAddress))
      throw new HttpError(403, "admin API is loopback-only");
    if (this.#token !== null) {
      const m = /^Bearer[ ]+(\S+)$/i.exec(req.headers.authorization ?? "");
      if (!m?.[1] || !timingSafeEqual(digest(m[1]), this.#token))
        throw new HttpError(401, "a valid admin token is required (Authorization: Bearer …)");
    }
    if (req.headers.origin !== undefined)
      throw new HttpError(403, "requests with an Origin header are refused");
    if (/^mozilla\//i.test(req.headers["user-agent"] ?? "")) {
      throw new HttpError(403, "browser requests are refused");
    }
    if (!loopbackHostHeader(req.headers.host))
      throw new HttpError(403, "Host must be a loopback address");
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      const hasBody =
        req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0";
      const chunked = req.headers["transfer-encoding"] !== undefined;
      const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
      if ((hasBody || chunked) && type !== "application/json") {
        throw new HttpError(415, "request bodies must be application/json");
      }
    }
  }

  async #readBody(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new HttpError(413, "body too large");
      chunks.push(chunk);
    }
    if (size === 0) return undefined;
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    } catch {
      throw new HttpError(400, "body is not valid JSON");
    }
  }

  async #route(
    method: string,
    path: string,
    body: unknown,
  ): Promise<string | { status?: number; body: unknown }> {
    const proxy = this.#proxy;
    const segments = path.split("/").filter(Boolean).map(decode);
    const [first, second, ...rest] = segments;
    if (rest.length > 0) throw new HttpError(404, "no such resource");
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw new HttpError(405, `use ${methods.join(" or ")}`);
    };
    if (first === undefined) {
      allow("GET");
      return {
        body: {
          proxy: proxy.address,
          identity: proxy.identityKind,
          timeScale: proxy.timeScale,
          authentication: proxy.authenticated,
          acl: proxy.acl,
          endpoints: [
            "GET /limits",
            "PUT /limits/default",
            "PUT /limits/{identity}",
            "DELETE /limits/{identity}",
            "GET /attempts",
            "DELETE /attempts/{id}",
            "GET /stats",
            "POST /reset",
            "GET /metrics",
          ],
        },
      };
    }
    if (first === "metrics" && second === undefined) {
      allow("GET");
      return proxy.metrics();
    }
    if (first === "stats" && second === undefined) {
      allow("GET");
      return { body: proxy.stats() };
    }
    if (first === "reset" && second === undefined) {
      allow("POST");
      return { body: proxy.reset() };
    }
    if (first === "limits") {
      if (second === undefined) {
        allow("GET");
        return { body: proxy.limits() };
      }
      if (method === "PUT") {
        if (body === undefined)
          throw new HttpError(400, "a JSON body with the settings is required");
        proxy.setLimits(second, body as never);
        return { body: proxy.limits() };
      }
      if (method === "DELETE") {
        if (second === "default")
          throw new HttpError(400, "the default limit can be changed, not removed");
        if (!proxy.clearLimits(second)) throw new HttpError(404, "no limit set for that identity");
        return { body: proxy.limits() };
      }
      throw new HttpError(405, "use PUT or DELETE");
    }
    if (first === "attempts") {
      if (second === undefined) {
        allow("GET");
        return { body: { attempts: proxy.attempts() } };
      }
      allow("DELETE");
      if (!/^\d+$/.test(second)) throw new HttpError(400, "attempt ids are integers");
      if (!proxy.cancelAttempt(Number(second))) throw new HttpError(404, "no such attempt");
      return { body: { cancelled: Number(second) } };
    }
    throw new HttpError(404, "no such resource");
  }

  #send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = `${JSON.stringify(body, null, 2)}\n`;
    if (status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="synlimit"');
    res.writeHead(status, {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Content-Length": Buffer.byteLength(text),
    });
    res.end(text);
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "malformed path");
  }
}
