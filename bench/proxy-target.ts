// The target of bench/proxy-setups.ts, a process of its own: greets each
// connection with one byte and closes. Prints its port on stdout.
import net from "node:net";

const server = net.createServer((s) => {
  s.on("error", () => {});
  s.end("x");
});
server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
