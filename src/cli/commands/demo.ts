import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { defaults } from "../../defaults.js";
import { SynlimitError } from "../../errors.js";
import type { ConnectTestResult } from "../../probe/connect-test.js";
import { LiveListener } from "../../targets/live.js";
import { Tarpit } from "../../targets/tarpit.js";
import { envWithout, runNode } from "../child.js";
import { positiveNumber } from "../parse.js";
import { formatLines, formatVerdict, type RenderContext } from "../render/connect-test.js";

type Run = ConnectTestResult & RenderContext;

const mainScript = fileURLToPath(new URL("../main.js", import.meta.url));
const registerUrl = new URL("../../emulate/register.js", import.meta.url).href;

const sides = [
  { profile: "windows", title: "A normal machine (no attempt limit)" },
  { profile: "incident", title: "The customer's server (1 attempt per process, FIFO)" },
] as const;

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "the incident on loopback in seconds: the test program on a normal machine and under the incident's limiter, side by side",
    )
    .option(
      "--time-scale <factor>",
      "compress time (0.1: 21 s runs as 2.1 s)",
      positiveNumber,
      defaults.demoTimeScale,
    )
    .option("--real-time", "run at real speed (the live connect waits ~20.5 s)")
    .option("--json", "print both runs as JSON")
    .action(
      async (
        flags: { timeScale: number; realTime?: boolean; json?: boolean },
        command: Command,
      ) => {
        if (flags.realTime && command.getOptionValueSource("timeScale") === "cli") {
          throw new SynlimitError(
            "SYNLIMIT_USAGE",
            "--time-scale and --real-time are alternatives (--real-time is --time-scale 1); give one",
          );
        }
        const timeScale = flags.realTime ? 1 : flags.timeScale;
        const tarpit = await Tarpit.listen();
        const live = await LiveListener.listen();
        let runs: Run[];
        try {
          runs = await Promise.all(
            sides.map((side) => runConnectTest(side.profile, timeScale, tarpit.port, live.port)),
          );
        } finally {
          await Promise.all([tarpit.close(), live.close()]);
        }
        const [normal, limited] = runs as [Run, Run];
        const reproduced =
          normal.verdict.kind === "not-serialized" && limited.verdict.kind === "serialized";
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({ version: 1, timeScale, reproduced, normal, limited })}\n`,
          );
        } else {
          process.stdout.write(render(normal, limited, timeScale, tarpit, live, reproduced));
        }
        process.exitCode = reproduced ? 0 : 1;
      },
    );
}

/** Each side runs in its own process, as the incident's program did, under synlimit/register. */
async function runConnectTest(
  profile: string,
  timeScale: number,
  pendingPort: number,
  livePort: number,
): Promise<Run> {
  const env = {
    ...envWithout("SYNLIMIT_"),
    SYNLIMIT_PROFILE: profile,
    SYNLIMIT_TIME_SCALE: String(timeScale),
  };
  const args = [
    "--import",
    registerUrl,
    mainScript,
    "connect-test",
    "127.0.0.1",
    String(pendingPort),
    "--live-port",
    String(livePort),
    "--json",
  ];
  const { code, stdout: out, stderr: err } = await runNode(args, env);
  try {
    const run = JSON.parse(out) as Run & { startedAt: string };
    return { ...run, startedAt: new Date(run.startedAt) };
  } catch {
    throw new SynlimitError(
      "SYNLIMIT_CHILD_FAILED",
      `connect-test under profile ${profile} exited ${code} without a result: ${err.trim().split("\n")[0] ?? ""}`,
    );
  }
}

function render(
  normal: Run,
  limited: Run,
  timeScale: number,
  tarpit: Tarpit,
  live: LiveListener,
  reproduced: boolean,
): string {
  const width = Math.max(40, Math.floor(((process.stdout.columns || 160) - 3) / 2));
  const clip = (s: string) => (s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width));
  const strip = (lines: string[]) => lines.map((l) => l.slice(13)); // wall clock differs per side
  const left = [sides[0].title, ...strip(formatLines(normal.lines, normal.startedAt))];
  const right = [sides[1].title, ...strip(formatLines(limited.lines, limited.startedAt))];
  const rows: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    rows.push(`${clip(left[i] ?? "")} | ${clip(right[i] ?? "")}`.trimEnd());
  }
  const scale =
    timeScale === 1
      ? "real time"
      : `time scale ${timeScale}: Windows' 21 s connect timeout runs as ${(21 * timeScale).toFixed(2)} s (--real-time for the real thing)`;
  const failure = limited.lines.find((l) => l.who === "pending" && l.kind === "error");
  return `${[
    "The incident, reproduced on loopback",
    `  dead collector: tarpit ${tarpit.address} (every connect stays in SYN_SENT)`,
    `  live web server: ${live.address}`,
    `  ${scale}`,
    "",
    ...rows,
    "",
    failure ? `[A]'s error: ${failure.text}` : "",
    `normal machine:    ${formatVerdict(normal, normal.emulation)}`,
    `customer's server: ${formatVerdict(limited, limited.emulation)}`,
    "",
    reproduced
      ? "Reproduced: the live connect completed the moment the pending one failed. Next: synlimit connect-test --help, synlimit tarpit, and node --import synlimit/register for your own program."
      : "NOT reproduced: see the verdicts above.",
  ].join("\n")}\n`;
}
