import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { SynlimitError } from "../../errors.js";
import { labDefaults } from "../../lab/defaults.js";
import type { LabServices } from "../../lab/run.js";
import { isScenarioName, scenarioNames } from "../../lab/scenarios.js";
import { findings, renderTable } from "../../lab/table.js";
import type { ScenarioName } from "../../lab/types.js";
import { loadOptional } from "../optional.js";
import { positiveNumber } from "../parse.js";
import { checkReportDir } from "../paths.js";

function timeScale(value: string): number {
  const n = positiveNumber(value);
  const { minTimeScale, maxTimeScale } = labDefaults;
  if (n < minTimeScale) {
    throw new InvalidArgumentError(
      `expected at least ${minTimeScale}: below it the lab's own work (a connect, a query, a late timer) swamps the compressed attempts (docs/lab.md).`,
    );
  }
  if (n > maxTimeScale) {
    throw new InvalidArgumentError(
      `expected at most ${maxTimeScale} (real time, also --real-time): the lab compresses time, it does not stretch it.`,
    );
  }
  return n;
}

function seconds(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value))
    throw new InvalidArgumentError("expected a non-negative number of seconds.");
  return Number(value);
}

function channels(value: string): number {
  if (!/^[1-8]$/.test(value)) throw new InvalidArgumentError("expected an integer from 1 to 8.");
  return Number(value);
}

interface Flags {
  scenario?: ScenarioName[];
  timeScale: number;
  realTime?: boolean;
  window: number;
  agentChannels: number;
  agentRetryPause: number;
  ldap?: string;
  ldapBindDn?: string;
  ldapPasswordEnv: string;
  postgres?: string;
  report?: string;
  json?: boolean;
}

function scenarioList(value: string): ScenarioName[] {
  const names = value.split(",").map((s) => s.trim());
  for (const n of names) {
    if (!isScenarioName(n))
      throw new InvalidArgumentError(`expected scenario names from ${scenarioNames.join(", ")}.`);
  }
  return names as ScenarioName[];
}

function url(protocols: string[]) {
  return (value: string): string => {
    try {
      if (protocols.includes(new URL(value).protocol)) return value;
    } catch {}
    throw new InvalidArgumentError(`expected a ${protocols.join(" or ")}// URL.`);
  };
}

export function registerLab(program: Command): void {
  program
    .command("lab")
    .description(
      "rerun the incident end to end on loopback — a web app under the limiter with logins (LDAP), a DB pool and API pools, an APM agent — in seven scenarios, checked against a queue model, with a table in field time and an optional HTML report",
    )
    .option(
      "--scenario <names>",
      `comma-separated subset of ${scenarioNames.join(", ")}`,
      scenarioList,
    )
    .option(
      "--time-scale <factor>",
      `compress time (0.02: Windows' 21 s attempt runs as 420 ms), from ${labDefaults.minTimeScale} to ${labDefaults.maxTimeScale}`,
      timeScale,
      labDefaults.timeScale,
    )
    .option(
      "--real-time",
      "run at real speed: 21 s attempts, each scenario's window in real seconds (about 25 minutes in all)",
    )
    .option(
      "--window <seconds>",
      "measured window of each scenario in field seconds (six attempt timeouts by default; the lab runs it × the time scale)",
      positiveNumber,
      labDefaults.fieldWindowMs / 1000,
    )
    .option(
      "--agent-channels <n>",
      "the naive agent's reconnect loops (1: logins wait up to one attempt, as in the field; 2: one to two)",
      channels,
      labDefaults.agent.channels,
    )
    .option(
      "--agent-retry-pause <seconds>",
      "field seconds the naive agent pauses after a failed attempt",
      seconds,
      labDefaults.agent.retryPauseMs / 1000,
    )
    .option(
      "--ldap <url>",
      "a real directory instead of the embedded responder (ldap://…)",
      url(["ldap:", "ldaps:"]),
    )
    .option("--ldap-bind-dn <dn>", "bind DN for --ldap")
    .option(
      "--ldap-password-env <name>",
      "environment variable holding the bind password for --ldap",
      "LDAP_PASSWORD",
    )
    .option(
      "--postgres <url>",
      "a real PostgreSQL instead of the embedded one (postgres://…)",
      url(["postgres:", "postgresql:"]),
    )
    .option(
      "--report <dir>",
      "write a self-contained HTML report, results.json and one trace per scenario (SCENARIO.trace) there",
    )
    .option("--json", "print the results as JSON instead of the table")
    .addHelpText(
      "after",
      `
Scenarios: baseline (no limit), incident (1 attempt/process, naive agent, dead collector),
fixed (guarded agent), escalation (2 of 3 API upstreams die), escalation-fixed (API pools on
synlimit/guard), restart (then every pool is flushed), restart-fixed (the same, pools guarded).
Times are printed in field time (lab time ÷ time scale), with the lab's own beside the headlines.
Exit code 0 when every check holds; 1 with a ✘ line for each that does not: a service that does
not answer (or refuses the bind), a scenario over its error budget, a fact the run does not show.

Examples:
  synlimit lab --report lab-report
  LDAP_PASSWORD=secret synlimit lab --ldap ldap://127.0.0.1:389 --ldap-bind-dn cn=admin,dc=example,dc=org \\
    --postgres postgres://app:app@127.0.0.1:5432/app
`,
    )
    .action(async (flags: Flags, command: Command) => {
      if (flags.realTime && command.getOptionValueSource("timeScale") === "cli") {
        throw new SynlimitError(
          "SYNLIMIT_USAGE",
          "--time-scale and --real-time are alternatives (--real-time is --time-scale 1); give one",
        );
      }
      // Before the services start: a report path that cannot be written costs one line.
      checkReportDir(flags.report);
      if (flags.ldap && !flags.ldapBindDn)
        throw new SynlimitError("SYNLIMIT_USAGE", "--ldap needs --ldap-bind-dn");
      const password = flags.ldap ? process.env[flags.ldapPasswordEnv] : undefined;
      if (flags.ldap && password === undefined) {
        throw new SynlimitError(
          "SYNLIMIT_USAGE",
          `--ldap needs the bind password in $${flags.ldapPasswordEnv}`,
        );
      }
      // Loaded here, not at startup: PGlite and the chart renderer are heavy,
      // and every other command would pay for them.
      const [{ EmbeddedLdap, EmbeddedPostgres }, { writeReport }, { checkServices }, { runLab }] =
        await loadOptional("lab", () =>
          Promise.all([
            import("../../lab/services/index.js"),
            import("../../lab/report/index.js"),
            import("../../lab/preflight.js"),
            import("../../lab/run.js"),
          ]),
        );
      const progress = new Progress();
      progress.line("starting services…");
      const ldap = flags.ldap ? null : await EmbeddedLdap.listen();
      let postgres: Awaited<ReturnType<typeof EmbeddedPostgres.listen>> | null = null;
      try {
        postgres = flags.postgres ? null : await EmbeddedPostgres.listen();
        const services: LabServices = {
          ldap: ldap
            ? { url: ldap.url, bindDN: ldap.bindDN, password: ldap.password }
            : {
                url: flags.ldap as string,
                bindDN: flags.ldapBindDn as string,
                password: password as string,
              },
          postgresUrl: postgres ? postgres.url : (flags.postgres as string),
        };
        progress.line("checking services…");
        const problems = await checkServices(services);
        if (problems.length > 0) {
          progress.done();
          process.stdout.write(
            flags.json
              ? `${JSON.stringify({ ok: false, problems })}\n`
              : problems.map((p) => `✘ ${p}\n`).join(""),
          );
          process.exitCode = 1;
          return;
        }
        const result = await runLab({
          services,
          timeScale: flags.realTime ? 1 : flags.timeScale,
          fieldWindowMs: flags.window * 1000,
          agent: { channels: flags.agentChannels, retryPauseMs: flags.agentRetryPause * 1000 },
          ...(flags.scenario ? { scenarios: flags.scenario } : {}),
          // Each scenario's attempts as a trace for `synlimit simulate`, beside the report.
          ...(flags.report ? { traceDir: flags.report } : {}),
          onProgress: (e) =>
            progress.line(`[${e.index + 1}/${e.total}] ${e.scenario}: ${e.phase}…`),
        });
        progress.done();
        if (flags.report) {
          const written = await writeReport(flags.report, result);
          process.stderr.write(`report: ${written.html}\n`);
        }
        process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : renderTable(result));
        process.exitCode = findings(result).every((l) => l.startsWith("✔")) ? 0 : 1;
      } finally {
        progress.done();
        await Promise.all([ldap?.close(), postgres?.close()]);
      }
    });
}

/** One updating line on a terminal; plain lines otherwise (CI logs). */
class Progress {
  readonly #tty = process.stderr.isTTY === true;
  #open = false;

  line(text: string): void {
    if (this.#tty) {
      process.stderr.write(`\r\x1b[2K${text}`);
      this.#open = true;
    } else {
      process.stderr.write(`${text}\n`);
    }
  }

  done(): void {
    if (this.#open) process.stderr.write("\r\x1b[2K");
    this.#open = false;
  }
}
