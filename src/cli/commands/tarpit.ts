import type { Command } from "commander";
import { usageError } from "../../errors.js";
import { isLoopbackAddress } from "../../loopback.js";
import { Tarpit } from "../../targets/tarpit.js";
import { ipAddress, port } from "../parse.js";
import { untilSignal } from "../signals.js";

export function registerTarpit(program: Command): void {
  program
    .command("tarpit")
    .description(
      "listen on loopback where every connect stays in SYN_SENT (a dead peer whose SYNs are dropped), until Ctrl-C",
    )
    .option(
      "--host <ip>",
      "address to listen on (non-loopback: needs --allow-non-loopback)",
      ipAddress,
      "127.0.0.1",
    )
    .option("--port <port>", "port to listen on (0: any free port)", port, 0)
    .option(
      "--allow-non-loopback",
      "listen on a non-loopback --host, as a blackhole for other hosts (e.g. a Windows probe's --blackhole)",
    )
    .option("--json", "print the address as JSON")
    .addHelpText(
      "after",
      `
Examples:
  synlimit tarpit --port 9999 &
  synlimit connect-test 127.0.0.1 9999 --live-port 8080

  # on a Linux machine, a blackhole a Windows host can use (no loopback tarpit
  # can exist on Windows: a full backlog answers with RST there)
  synlimit tarpit --host ADDRESS --port 9999 --allow-non-loopback
  # then on the Windows host:  npx synlimit probe --blackhole ADDRESS:9999
`,
    )
    .action(
      async (options: {
        host: string;
        port: number;
        allowNonLoopback?: boolean;
        json?: boolean;
      }) => {
        if (!isLoopbackAddress(options.host) && options.allowNonLoopback !== true) {
          throw usageError(
            `--host ${options.host} is not a loopback address: a tarpit other hosts can reach needs --allow-non-loopback`,
          );
        }
        const tarpit = (
          await Tarpit.listen({
            host: options.host,
            port: options.port,
            allowNonLoopback: options.allowNonLoopback === true,
          })
        ).ref();
        const info = {
          host: tarpit.host,
          port: tarpit.port,
          verified: tarpit.verified,
          reachableFromOtherHosts: !isLoopbackAddress(tarpit.host),
        };
        // Listening for signals before printing: a caller may send one as soon as it reads the line.
        const signal = untilSignal();
        process.stdout.write(
          options.json
            ? `${JSON.stringify(info)}\n`
            : `tarpit listening on ${tarpit.address}${tarpit.verified ? " (verified: connects stay in SYN_SENT)" : ""}\n`,
        );
        await signal;
        await tarpit.close();
      },
    );
}
