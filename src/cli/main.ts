#!/usr/bin/env node
import { endQuietlyWhenOutputCloses } from "./output.js";
import { buildProgram, runCli } from "./program.js";

endQuietlyWhenOutputCloses();
await runCli(buildProgram(), process.argv);
