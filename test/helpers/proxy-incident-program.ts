// The incident's test program, as a separate process whose connects go
// through a SOCKS5 proxy: for each stdin line "connect WHO HOST PORT" it
// prints "Trying to connect", then "Connected!" or the error, as JSON lines
// with the time since start. The test drives it line by line, so the second
// connect follows the first by an event, not by a sleep.
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SocksClient } from "socks";

export const incidentProgramPath = fileURLToPath(import.meta.url);

export interface ProgramLine {
  who: string;
  kind: "ready" | "trying" | "connected" | "error";
  atMs: number;
  text: string;
}

function main(): void {
  const proxyPort = Number(process.argv[2]);
  const t0 = performance.now();
  const print = (who: string, kind: ProgramLine["kind"], text: string) => {
    const line: ProgramLine = { who, kind, atMs: performance.now() - t0, text };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const pending: Promise<void>[] = [];
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const [cmd, who = "?", host = "", port = "0"] = line.trim().split(/\s+/);
    if (cmd !== "connect") return;
    print(who, "trying", `Trying to connect ${host}:${port}`);
    pending.push(
      SocksClient.createConnection({
        proxy: { host: "127.0.0.1", port: proxyPort, type: 5 },
        command: "connect",
        destination: { host, port: Number(port) },
        timeout: 120_000,
      }).then(
        ({ socket }) => {
          print(who, "connected", "Connected!");
          socket.destroy();
        },
        (error: Error) => print(who, "error", error.message),
      ),
    );
  });
  rl.on("close", () => {
    void Promise.all(pending).then(() => process.exit(0));
  });
  print("-", "ready", `pid ${process.pid}`);
}

if (process.argv[1] === incidentProgramPath) main();
