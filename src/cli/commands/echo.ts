import diagnostics from "node:diagnostics_channel";
import type { Command } from "commander";
import { formatEndpoint } from "../../errors.js";
import { type EchoDatagramEvent, EchoServer, echoChannelNames } from "../../targets/echo.js";
import { createLogger } from "../log.js";
import { ipAddress, port } from "../parse.js";
import { logLevel } from "../parse-echo.js";
import { untilSignal } from "../signals.js";

interface Flags {
  host: string;
  port: number;
  tcp?: boolean;
  tcpPort?: number;
  json?: boolean;
  logLevel: string;
}

export function registerEcho(program: Command): void {
  program
    .command("echo")
    .description(
      "answer UDP echo (RFC 862), and TCP echo with --tcp, so an agent can check its collector is alive before opening a TCP connection; until Ctrl-C",
    )
    .option("--host <ip>", "address to listen on", ipAddress, "127.0.0.1")
    .option(
      "--port <port>",
      "UDP port (0: any free port; RFC 862's port 7 needs root or CAP_NET_BIND_SERVICE)",
      port,
      0,
    )
    .option("--tcp", "also answer TCP echo")
    .option(
      "--tcp-port <port>",
      "TCP port (implies --tcp; default: the UDP port if free, else any free port)",
      port,
    )
    .option("--json", "print the addresses as one JSON line")
    .option("--log-level <level>", "log level for the JSON logs on stderr", logLevel, "info")
    .addHelpText(
      "after",
      `
Replies go only to the sender, byte for byte. Datagrams from the ports of
echo-like services (7, 13, 17, 19, 37) and from the responder's own port are
dropped, so two responders cannot be made to bounce a datagram forever.
Each datagram is logged (sender and size, never its bytes) at debug level.

Example (deployed next to a collector, on RFC 862's port; needs root):
  synlimit echo --host 0.0.0.0 --port 7 --tcp
`,
    )
    .action(async (flags: Flags) => {
      const log = createLogger(flags.logLevel);
      const tcp = flags.tcp === true || flags.tcpPort !== undefined;
      const server = await EchoServer.listen({
        host: flags.host,
        udpPort: flags.port,
        tcp,
        ...(flags.tcpPort !== undefined ? { tcpPort: flags.tcpPort } : {}),
      });
      const info = { host: server.host, udpPort: server.udpPort, tcpPort: server.tcpPort };
      process.stdout.write(flags.json ? `${JSON.stringify(info)}\n` : `${describe(info)}\n`);
      log.info(info, "echo responder listening");

      const onDatagram = (message: unknown) => {
        const { from, bytes, echoed } = message as EchoDatagramEvent;
        log.debug({ from, bytes, echoed }, "datagram");
      };
      const traced = log.isLevelEnabled("debug");
      if (traced) diagnostics.subscribe(echoChannelNames.datagram, onDatagram);

      const signal = await untilSignal();
      if (traced) diagnostics.unsubscribe(echoChannelNames.datagram, onDatagram);
      await server.close();
      log.info(
        {
          signal,
          datagrams: server.datagrams,
          droppedDatagrams: server.droppedDatagrams,
          tcpConnections: server.tcpConnections,
        },
        "echo responder closed",
      );
    });
}

function describe({
  host,
  udpPort,
  tcpPort,
}: {
  host: string;
  udpPort: number;
  tcpPort: number | null;
}): string {
  const udp = `echo responder on udp ${formatEndpoint({ host, port: udpPort })}`;
  return tcpPort === null ? udp : `${udp} (tcp ${formatEndpoint({ host, port: tcpPort })})`;
}
