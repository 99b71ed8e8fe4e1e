import type { Command } from "commander";
import { profileNames, profiles } from "../../emulate/profiles.js";
import { resolveTiming, type Timing, timingNames, timings } from "../../gate/timing.js";

export function registerProfiles(program: Command): void {
  program
    .command("profiles")
    .description("list the limiter profiles and SYN schedules, with their sources")
    .option("--json", "print machine-readable JSON")
    .action((options: { json?: boolean }) => {
      if (options.json) {
        // An object, not the bare list of profiles: the SYN schedules the
        // human output lists belong in it too, under their own key.
        const list = profileNames.map((name) => ({
          name,
          ...profiles[name],
          options: {
            ...profiles[name].options,
            maxInFlight: finiteOrNull(profiles[name].options.maxInFlight),
          },
          schedule: scheduleJson(resolveTiming(profiles[name].options.timing)),
        }));
        const schedules = timingNames.map((name) => ({
          ...scheduleJson(timings[name]),
          description: timings[name].description,
        }));
        const out = { profiles: list, schedules };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      for (const name of profileNames) {
        const p = profiles[name];
        const t = resolveTiming(p.options.timing);
        process.stdout.write(
          `${name}\n  ${p.description}\n  source: ${p.source}\n  timing: ${t.kind} (${describeSchedule(t)})\n`,
        );
      }
      process.stdout.write(
        "\nSYN schedules (--timing, SYNLIMIT_TIMING; or syn:MS,MS,…;giveup:MS in milliseconds)\n",
      );
      for (const name of timingNames) {
        const t = timings[name];
        process.stdout.write(
          `${name}\n  ${describeSchedule(t)}\n  ${t.description}\n  source: ${t.source}\n`,
        );
      }
    });
}

function describeSchedule(t: Timing): string {
  if (t.failAtMs === null) return "no emulated deadline";
  const s = (ms: number) => `${ms / 1000}`;
  return `SYN at ${t.synAtMs.map(s).join(", ")} s; gives up at ${s(t.failAtMs)} s; ${t.spec}`;
}

function scheduleJson(t: Timing) {
  const builtIn = t.kind in timings ? timings[t.kind as keyof typeof timings] : null;
  return {
    name: t.kind,
    synAtMs: t.synAtMs,
    giveUpMs: t.failAtMs,
    spec: t.spec,
    source: builtIn?.source ?? null,
  };
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
