import { readFileSync } from "node:fs";
import { z } from "zod";
import { usageError } from "../errors.js";

import { readAdminToken } from "./admin-token.js";

export { readAdminToken };

import type { Fail } from "../gate/validate.js";
import { parseUsersFile } from "./credentials.js";
import { identityKinds } from "./identity.js";
import { type LimitSettings, validateSettings } from "./limits.js";
import { identityNameExpected, isIdentityName, proxyLimits } from "./options.js";
import type { GateProxyOptions } from "./server.js";

// Limit settings are checked by the same code as the library's options
// (validateSettings) once zod has the shape: one set of rules, not two.
const settingsSchema = z.record(z.string(), z.unknown());

const port = z.number().int().min(0).max(65535);

/** The `synlimit gate --config` file. Unknown keys are errors: a typo must not silently weaken a rule. */
export const configSchema = z.strictObject({
  host: z.string().optional(),
  port: port.optional(),
  allowNonLoopback: z.boolean().optional(),
  identity: z.enum(identityKinds as [string, ...string[]]).optional(),
  limits: settingsSchema.optional(),
  identities: z.record(z.string().min(1), settingsSchema).optional(),
  denyLinkLocal: z.boolean().optional(),
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
      z.strictObject({
        host: z.string().optional(),
        port: port.optional(),
        tokenFile: z.string().min(1).optional(),
        socketPath: z.string().min(1).optional(),
      }),
    ])
    .optional(),
  handshakeTimeoutMs: z.number().int().min(1).optional(),
  maxHeaderBytes: z.number().int().min(proxyLimits.minMaxHeaderBytes).optional(),
  maxClients: z.number().int().min(1).optional(),
  maxOpenFds: z.number().int().min(16).optional(),
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
  // Before zod, which drops a "__proto__" key without a word.
  const rawIdentities = (json as { identities?: unknown } | null)?.identities;
  if (typeof rawIdentities === "object" && rawIdentities !== null) {
    for (const k of Object.keys(rawIdentities)) {
      if (!isIdentityName(k)) {
        throw usageError(
          `config file ${path}: identities: ${JSON.stringify(k)} is not an identity (expected ${identityNameExpected})`,
        );
      }
    }
  }
  const r = configSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.map(String).join(".") : "(top level)";
    throw usageError(`config file ${path}: ${where}: ${issue?.message ?? "invalid"}`);
  }
  const fail: Fail = (name, expected, got) => {
    throw usageError(
      `config file ${path}: ${name}: must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`,
    );
  };
  const c = r.data;
  if (c.limits !== undefined) validateSettings(c.limits, "limits", fail);
  for (const [k, v] of Object.entries(c.identities ?? {})) {
    if (!isIdentityName(k)) fail(`identities.${k}`, `named ${identityNameExpected}`, k);
    validateSettings(v, `identities.${k}`, fail);
  }
  return c;
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
    ...(c.denyLinkLocal !== undefined ? { denyLinkLocal: c.denyLinkLocal } : {}),
    ...(c.admin !== undefined ? { admin: adminOptions(c.admin) } : {}),
    ...(c.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: c.handshakeTimeoutMs } : {}),
    ...(c.maxHeaderBytes !== undefined ? { maxHeaderBytes: c.maxHeaderBytes } : {}),
    ...(c.maxClients !== undefined ? { maxClients: c.maxClients } : {}),
    ...(c.maxOpenFds !== undefined ? { maxOpenFds: c.maxOpenFds } : {}),
  };
  return { options, logLevel: c.logLevel };
}

function adminOptions(a: NonNullable<GateConfig["admin"]>): GateProxyOptions["admin"] {
  if (a === false) return false;
  const { tokenFile, ...rest } = a;
  return {
    ...rest,
    ...(tokenFile !== undefined ? { token: readAdminToken(tokenFile, "admin.tokenFile") } : {}),
  };
}
