import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { inspect } from "node:util";
import { invalidOption } from "../errors.js";

export interface UserEntry {
  readonly username: string;
  readonly password: string;
}

/**
 * The proxy's users. Passwords are kept only as keyed digests in private
 * fields: nothing here is enumerable, serialisable or printed by
 * `console.log`, so a credential cannot reach a log line by accident.
 */
export class Credentials {
  // A per-process key: digests are worthless outside this process.
  readonly #key = randomBytes(32);
  readonly #users = new Map<string, Buffer>();
  // Unknown users are compared against this, so a wrong name costs the same
  // as a wrong password.
  readonly #decoy: Buffer;

  constructor(users: readonly UserEntry[]) {
    if (!Array.isArray(users) || users.length === 0) {
      throw invalidOption("users", "a non-empty array of { username, password }", users);
    }
    for (const [i, u] of users.entries()) {
      if (typeof u !== "object" || u === null) throw invalidOption(`users[${i}]`, "an object", u);
      const { username, password } = u;
      if (
        typeof username !== "string" ||
        Buffer.byteLength(username) < 1 ||
        Buffer.byteLength(username) > 255
      ) {
        throw invalidOption(`users[${i}].username`, "a string of 1 to 255 bytes", "(hidden)");
      }
      if (
        typeof password !== "string" ||
        Buffer.byteLength(password) < 1 ||
        Buffer.byteLength(password) > 255
      ) {
        throw invalidOption(`users[${i}].password`, "a string of 1 to 255 bytes", "(hidden)");
      }
      if (this.#users.has(username)) {
        throw invalidOption(`users[${i}].username`, "unique", "a duplicate");
      }
      this.#users.set(username, this.#digest(password));
    }
    this.#decoy = this.#digest(randomBytes(16).toString("hex"));
  }

  get size(): number {
    return this.#users.size;
  }

  /** Constant-time with respect to the password and to whether the user exists. */
  verify(username: string, password: string): boolean {
    const stored = this.#users.get(username);
    const given = this.#digest(password);
    const same = timingSafeEqual(given, stored ?? this.#decoy);
    return same && stored !== undefined;
  }

  #digest(secret: string): Buffer {
    return createHmac("sha256", this.#key).update(secret, "utf8").digest();
  }

  toJSON(): { users: number } {
    return { users: this.#users.size };
  }

  [inspect.custom](): string {
    return `Credentials { users: ${this.#users.size} }`;
  }
}

/** Parses a users file: one `username:password` per line; `#` comments and blank lines skipped. */
export function parseUsersFile(text: string): UserEntry[] {
  const users: UserEntry[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0 || colon === line.length - 1) {
      // The line number only: the line itself may hold a password.
      throw invalidOption(`users file line ${i + 1}`, "username:password", "something else");
    }
    users.push({ username: line.slice(0, colon), password: line.slice(colon + 1) });
  }
  return users;
}
