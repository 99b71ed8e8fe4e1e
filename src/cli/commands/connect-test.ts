import type { Command } from "commander";

export function registerConnectTest(_program: Command): void {}
