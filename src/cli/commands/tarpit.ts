import type { Command } from "commander";
import { Tarpit } from "../../targets/tarpit.js";
import { ipAddress, port } from "../parse.js";
import { untilSignal } from "../signals.js";

export function registerTarpit(program: Command): void {
  program
    .command("tarpit")
    .description(
      "listen on loopback where every connect stays in SYN_SENT (a dead peer whose SYNs are dropped), until Ctrl-C",
    )
    .option("--host <ip>", "address to listen on", ipAddress, "127.0.0.1")
    .option("--port <port>", "port to listen on (0: any free port)", port, 0)
    .option("--json", "print the address as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  synlimit tarpit --port 9999 &\n  synlimit connect-test 127.0.0.1 9999 --live-port 8080\n",
    )
    .action(async (options: { host: string; port: number; json?: boolean }) => {
      const tarpit = (await Tarpit.listen({ host: options.host, port: options.port })).ref();
      const info = { host: tarpit.host, port: tarpit.port, verified: tarpit.verified };
      process.stdout.write(
        options.json
          ? `${JSON.stringify(info)}\n`
          : `tarpit listening on ${tarpit.address}${tarpit.verified ? " (verified: connects stay in SYN_SENT)" : ""}\n`,
      );
      await untilSignal();
      await tarpit.close();
    });
}
