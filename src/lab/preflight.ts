import { Client as LdapClient } from "ldapts";
import pg from "pg";
import type { LabServices } from "./run.js";

/** How long the lab waits for a service before calling it unreachable. */
const serviceTimeoutMs = 5_000;

/**
 * Each service answered as the app will use it: a bind with the configured
 * DN and password, a query on the database. Returns one line per problem
 * (empty when both are fine), so a wrong password or a dead server is named
 * before any scenario runs, not discovered as 50 failed logins.
 */
export async function checkServices(services: LabServices): Promise<string[]> {
  const [ldap, db] = await Promise.all([checkLdap(services), checkPostgres(services)]);
  return [ldap, db].filter((x): x is string => x !== null);
}

async function checkLdap(services: LabServices): Promise<string | null> {
  const { url, bindDN, password } = services.ldap;
  const client = new LdapClient({
    url,
    timeout: serviceTimeoutMs,
    connectTimeout: serviceTimeoutMs,
  });
  try {
    await client.bind(bindDN, password);
    return null;
  } catch (error) {
    return `directory ${redact(url)}: bind as ${bindDN} failed: ${describe(error)}`;
  } finally {
    await client.unbind().catch(() => {});
  }
}

async function checkPostgres(services: LabServices): Promise<string | null> {
  const client = new pg.Client({
    connectionString: services.postgresUrl,
    connectionTimeoutMillis: serviceTimeoutMs,
    query_timeout: serviceTimeoutMs,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (error) {
    return `database ${redact(services.postgresUrl)}: ${describe(error)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const message = error.message || (error as AggregateError).errors?.map(describe).join(", ") || "";
  return `${error.name}${code && !message.includes(code) ? ` ${code}` : ""}: ${message.split("\n")[0]}`;
}

/** Service URLs go into messages: never with a password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}
