import { once } from "node:events";
import net from "node:net";
import type { TestContext } from "node:test";
import type { ClientEndpoints } from "../../src/proxy/identity.js";

/** A connected pair on loopback: the client socket and the server's accepted one, closed when the test ends. */
export async function loopbackPair(
  t: TestContext,
  listenHost = "127.0.0.1",
  connectHost = listenHost,
): Promise<{ client: net.Socket; accepted: net.Socket; port: number }> {
  const server = net.createServer().listen(0, listenHost);
  t.after(() => server.close());
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection");
  const client = net.connect(port, connectHost);
  client.on("error", () => {});
  t.after(() => client.destroy());
  await once(client, "connect");
  const [socket] = (await accepted) as [net.Socket];
  t.after(() => socket.destroy());
  return { client, accepted: socket, port };
}

/** A server-side socket's view of its client, as the proxy looks it up. */
export function endpointsOf(accepted: net.Socket): ClientEndpoints {
  return {
    remoteAddress: accepted.remoteAddress ?? "",
    remotePort: accepted.remotePort ?? 0,
    localAddress: accepted.localAddress ?? "",
    localPort: accepted.localPort ?? 0,
  };
}
