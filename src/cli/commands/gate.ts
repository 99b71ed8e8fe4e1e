import type { Command } from "commander";

// Placeholder until the gate proxy lands (issue 4).
export function registerGate(_program: Command): void {}
