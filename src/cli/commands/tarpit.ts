import type { Command } from "commander";
import {
  formatSchedule,
  type SenderStopped,
  type SynArrival,
  SynWatch,
} from "../../analyze/syn-watch.js";
import { SynlimitError, usageError } from "../../errors.js";
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
    .option(
      "--show-syns",
      "print every SYN that reaches the port, dropped ones included, grouped by sender, and each sender's schedule once it stops (runs tcpdump: needs root or CAP_NET_RAW)",
    )
    .option(
      "--capture-interface <name>",
      "interface --show-syns captures on (default: lo for a loopback --host, else any)",
    )
    .option("--json", "print the address (and with --show-syns each SYN and summary) as JSON lines")
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
  # add --show-syns to see the Windows host's SYN retransmissions arrive

  sudo synlimit tarpit --port 9999 --show-syns
  # 127.0.0.1:40112 → 127.0.0.1:9999  SYN #1 +0.000 s
  # 127.0.0.1:40112 → 127.0.0.1:9999  SYN #2 +1.002 s  …
`,
    )
    .action(
      async (options: {
        host: string;
        port: number;
        allowNonLoopback?: boolean;
        showSyns?: boolean;
        captureInterface?: string;
        json?: boolean;
      }) => {
        if (options.captureInterface !== undefined && options.showSyns !== true) {
          throw usageError("--capture-interface needs --show-syns");
        }
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
        // Started after the tarpit filled its own queue, so its fillers' SYNs are not shown.
        let watch: SynWatch | null = null;
        if (options.showSyns === true) {
          try {
            watch = await SynWatch.start({
              host: tarpit.host,
              port: tarpit.port,
              ...(options.captureInterface !== undefined && {
                interface: options.captureInterface,
              }),
            });
          } catch (error) {
            await tarpit.close();
            throw error instanceof SynlimitError
              ? new SynlimitError(error.code, `--show-syns: ${error.message}`)
              : error;
          }
        }
        const info = {
          event: "listening",
          host: tarpit.host,
          port: tarpit.port,
          verified: tarpit.verified,
          reachableFromOtherHosts: !isLoopbackAddress(tarpit.host),
          ...(watch !== null && { showSyns: { interface: watch.interface } }),
        };
        // Listening for signals before printing: a caller may send one as soon as it reads the line.
        const signal = untilSignal();
        let failed: Promise<Error> = new Promise(() => {});
        if (watch !== null) {
          const json = options.json === true;
          watch.on("syn", (e) => process.stdout.write(json ? jsonLine("syn", e) : synLine(e)));
          watch.on("stopped", (e) =>
            process.stdout.write(json ? jsonLine("stopped", e) : stoppedLine(e)),
          );
          const w = watch;
          failed = new Promise((resolve) => w.once("error", resolve));
        }
        process.stdout.write(
          options.json
            ? `${JSON.stringify(info)}\n`
            : `tarpit listening on ${tarpit.address}${tarpit.verified ? " (verified: connects stay in SYN_SENT)" : ""}${watch !== null ? `; showing the SYNs that reach it (tcpdump on ${watch.interface})` : ""}\n`,
        );
        const ended = await Promise.race([signal, failed]);
        await watch?.close();
        await tarpit.close();
        if (ended instanceof Error) {
          throw new SynlimitError("SYNLIMIT_CHILD_FAILED", `--show-syns: ${ended.message}`);
        }
      },
    );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

function synLine(e: SynArrival): string {
  return `${e.from} → ${e.to}  SYN #${e.n} +${seconds(e.offsetMs)}\n`;
}

function stoppedLine(e: SenderStopped): string {
  const syns = `${e.offsetsMs.length} SYN${e.offsetsMs.length === 1 ? "" : "s"}`;
  const offsets = e.offsetsMs.map((ms, i) => `#${i + 1} +${seconds(ms)}`).join(", ");
  const schedule = `schedule ${formatSchedule(e.offsetsMs)} s`;
  const what =
    e.reason === "silent"
      ? `stopped after ${syns}: ${schedule}${e.gaveUpByMs === null ? "" : `, gave up at about +${formatSchedule([e.gaveUpByMs])} s (estimated from the SYN gaps)`}`
      : e.reason === "new-attempt"
        ? `new attempt on the same ports after ${syns}: ${schedule}`
        : `still retransmitting when the tarpit stopped, ${syns}: ${schedule} so far`;
  return `${e.from} → ${e.to}  ${what} (${offsets})\n`;
}

function jsonLine(event: "syn" | "stopped", e: SynArrival | SenderStopped): string {
  const extra =
    "offsetsMs" in e ? { syns: e.offsetsMs.length, schedule: formatSchedule(e.offsetsMs) } : {};
  // Microseconds are all a capture's timestamps hold; the float noise below them is not data.
  const us = (_key: string, v: unknown) =>
    typeof v === "number" ? Math.round(v * 1000) / 1000 : v;
  return `${JSON.stringify({ event, ...e, ...extra }, us)}\n`;
}
