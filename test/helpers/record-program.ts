/**
 * A small real program for `synlimit record` tests, run in its own network
 * namespace (fixed ports are free there): node:http and undici requests to a
 * live server, a refused port retried from the error callback, a tarpit the
 * kernel gives up on, a connect the program cancels, and one still pending
 * when the program exits.
 */
import http from "node:http";
import net from "node:net";
import { request } from "undici";
import { Tarpit } from "../../src/targets/tarpit.js";

const server = http.createServer((_req, res) => res.end("ok"));
await new Promise<void>((resolve) => server.listen(8080, "127.0.0.1", resolve));
const tarpit = await Tarpit.listen({ host: "127.0.0.1", port: 9, verify: false });

await new Promise<void>((resolve, reject) => {
  http
    .get({ host: "127.0.0.1", port: 8080, agent: false }, (res) => {
      res.resume().on("end", resolve);
    })
    .on("error", reject);
});
const { body } = await request("http://127.0.0.1:8080/", { reset: true });
await body.text();

// Refused, then retried 20 ms later from the error callback: the retry is linked.
await new Promise<void>((resolve) => {
  net.connect(7, "127.0.0.1").on("error", () => {
    setTimeout(() => net.connect(7, "127.0.0.1").on("error", () => resolve()), 20);
  });
});

// The kernel gives up (tcp_syn_retries=1: after about 3 s).
const timedOut = await new Promise<string>((resolve) => {
  net.connect(9, "127.0.0.1").on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? ""));
});

// The program gives up itself after 100 ms.
await new Promise<void>((resolve) => {
  const s = net.connect(9, "127.0.0.1").on("error", () => {});
  setTimeout(() => {
    s.destroy();
    resolve();
  }, 100);
});

process.stdout.write(`${JSON.stringify({ timedOut })}\n`);
// Still in SYN_SENT when the program exits: the trace must still have it.
net.connect(9, "127.0.0.1").on("error", () => {});
setTimeout(() => {
  void tarpit;
  process.exit(0);
}, 50);
