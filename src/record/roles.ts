import { usageError } from "../errors.js";

/**
 * Which role a destination plays ("389=login", "127.0.0.1:5432=db"): an exact
 * host:port wins over a port alone.
 */
export class RoleMap {
  readonly #byDest = new Map<string, string>();
  readonly #byPort = new Map<number, string>();

  /** Parses `PORT=ROLE` or `HOST:PORT=ROLE` items (also comma-separated). */
  static parse(items: readonly string[]): RoleMap {
    const map = new RoleMap();
    for (const item of items.flatMap((i) => i.split(","))) {
      const spec = item.trim();
      if (spec === "") continue;
      const m = /^(?:(.+):)?(\d{1,5})=([A-Za-z0-9_.-]+)$/.exec(spec);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) {
        throw usageError(
          `--role must be PORT=ROLE or HOST:PORT=ROLE (role: letters, digits, _ . -), got ${JSON.stringify(spec)}`,
        );
      }
      const role = m[3] as string;
      if (m[1] === undefined) map.#byPort.set(port, role);
      else map.#byDest.set(`${m[1].replace(/^\[(.*)\]$/, "$1")}:${port}`, role);
    }
    return map;
  }

  get size(): number {
    return this.#byDest.size + this.#byPort.size;
  }

  roleOf(host: string, port: number): string | undefined {
    return this.#byDest.get(`${host}:${port}`) ?? this.#byPort.get(port);
  }

  /** The role of a trace `dest` ("host:port" or "[v6]:port"). */
  roleOfDest(dest: string): string | undefined {
    const i = dest.lastIndexOf(":");
    if (i < 0) return undefined;
    return this.roleOf(dest.slice(0, i).replace(/^\[(.*)\]$/, "$1"), Number(dest.slice(i + 1)));
  }

  /** Back to the `--role` syntax, for a child's environment. */
  toString(): string {
    const items = [...this.#byPort].map(([p, r]) => `${p}=${r}`);
    for (const [d, r] of this.#byDest) {
      const i = d.lastIndexOf(":");
      const host = d.slice(0, i);
      items.push(`${host.includes(":") ? `[${host}]` : host}:${d.slice(i + 1)}=${r}`);
    }
    return items.join(",");
  }
}
