import type { Command } from "commander";

// Placeholder until the echo responder lands (src/targets/echo.ts).
export function registerEcho(_program: Command): void {}
