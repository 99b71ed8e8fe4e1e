import type { Command } from "commander";

// Placeholder until the probe lands (issue 3).
export function registerProbe(_program: Command): void {}
