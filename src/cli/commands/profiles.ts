import type { Command } from "commander";
import { profileNames, profiles } from "../../emulate/profiles.js";

export function registerProfiles(program: Command): void {
  program
    .command("profiles")
    .description("list the limiter profiles, with their sources")
    .option("--json", "print machine-readable JSON")
    .action((options: { json?: boolean }) => {
      if (options.json) {
        const out = profileNames.map((name) => ({
          name,
          ...profiles[name],
          options: {
            ...profiles[name].options,
            maxInFlight: finiteOrNull(profiles[name].options.maxInFlight),
          },
        }));
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      for (const name of profileNames) {
        const p = profiles[name];
        process.stdout.write(`${name}\n  ${p.description}\n  source: ${p.source}\n`);
      }
    });
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
