import { readFileSync } from "node:fs";
import { z } from "zod";
import { profileNames } from "../emulate/profiles.js";
import { usageError } from "../errors.js";
import { parseUsersFile } from "./credentials.js";
import { identityKinds } from "./identity.js";
import type { LimitSettings } from "./limits.js";
import type { GateProxyOptions } from "./server.js";

const settingsSchema = z.strictObject({
  profile: z.enum(profileNames as [string, ...string[]]).optional(),
  maxInFlight: z.union([z.number().int().min(1), z.literal("unlimited")]).optional(),
  policy: z.enum(["queue", "reject", "rate"]).optional(),
  timing: z.union([z.enum(["none", "windows", "linux"]), z.number().positive()]).optional(),
  scope: z.enum(["identity", "destination"]).optional(),
  rate: z
    .strictObject({
      newDestinationsPerSecond: z.number().positive().optional(),
      workingSetSize: z.number().int().min(0).optional(),
    })
    .optional(),
});

const port = z.number().int().min(0).max(65535);

/** The `synlimit gate --config` file. Unknown keys are errors: a typo must not silently weaken a rule. */
export const configSchema = z.strictObject({
  host: z.string().optional(),
  port: port.optional(),
  allowNonLoopback: z.boolean().optional(),
  identity: z.enum(identityKinds as [string, ...string[]]).optional(),
  limits: settingsSchema.optional(),
  identities: z.record(z.string().min(1), settingsSchema).optional(),
  timeScale: z.number().positive().optional(),
  users: z
    .array(
      z.strictObject({
        username: z.string().min(1).max(255),
        password: z.string().min(1).max(255),
      }),
    )
    .optional(),
  usersFile: z.string().min(1).optional(),
  allow: z.array(z.string()).optional(),
  deny: z.array(z.string()).optional(),
  admin: z
    .union([
      z.literal(false),
      z.strictObject({ host: z.string().optional(), port: port.optional() }),
    ])
    .optional(),
  handshakeTimeoutMs: z.number().int().min(1).optional(),
  maxHeaderBytes: z.number().int().min(256).optional(),
  maxClients: z.number().int().min(1).optional(),
  logLevel: z.string().optional(),
});

export type GateConfig = z.infer<typeof configSchema>;

/** A config file's contents as proxy options (plus the CLI-only log level). */
export interface LoadedConfig {
  readonly options: GateProxyOptions;
  readonly logLevel: string | undefined;
}

/** Reads and validates a config file; any problem is one line naming the file and the field. */
export function loadConfig(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(
      `config file ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw usageError(
      `config file ${path}: not valid JSON (${(error as Error).message.split("\n")[0]})`,
    );
  }
  return configToOptions(parseConfig(json, path));
}

export function parseConfig(json: unknown, path = "(inline)"): GateConfig {
  const r = configSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.map(String).join(".") : "(top level)";
    throw usageError(`config file ${path}: ${where}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}

export function configToOptions(c: GateConfig): LoadedConfig {
  let users = c.users;
  if (c.usersFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(c.usersFile, "utf8");
    } catch (error) {
      throw usageError(
        `users file ${c.usersFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    users = [...(users ?? []), ...parseUsersFile(text)];
  }
  const options: GateProxyOptions = {
    ...(c.host !== undefined ? { host: c.host } : {}),
    ...(c.port !== undefined ? { port: c.port } : {}),
    ...(c.allowNonLoopback !== undefined ? { allowNonLoopback: c.allowNonLoopback } : {}),
    ...(c.identity !== undefined ? { identity: c.identity as GateProxyOptions["identity"] } : {}),
    ...(c.limits !== undefined ? { limits: c.limits as LimitSettings } : {}),
    ...(c.identities !== undefined
      ? { identities: c.identities as Record<string, LimitSettings> }
      : {}),
    ...(c.timeScale !== undefined ? { timeScale: c.timeScale } : {}),
    ...(users !== undefined ? { users } : {}),
    ...(c.allow !== undefined ? { allow: c.allow } : {}),
    ...(c.deny !== undefined ? { deny: c.deny } : {}),
    ...(c.admin !== undefined ? { admin: c.admin } : {}),
    ...(c.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: c.handshakeTimeoutMs } : {}),
    ...(c.maxHeaderBytes !== undefined ? { maxHeaderBytes: c.maxHeaderBytes } : {}),
    ...(c.maxClients !== undefined ? { maxClients: c.maxClients } : {}),
  };
  return { options, logLevel: c.logLevel };
}
