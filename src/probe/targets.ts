import { lookup } from "node:dns/promises";
import net from "node:net";
import { defaults } from "../defaults.js";
import { type Endpoint, formatEndpoint, SynlimitError } from "../errors.js";
import { pollSynSent, tcpTableSupported } from "../os/linux/syn-sent.js";
import { blackholeProblem } from "../os/platform.js";
import { LiveListener } from "../targets/live.js";
import { Tarpit } from "../targets/tarpit.js";
import { describeProxy, isLoopback, type ProxySpec } from "./address.js";
import type { TargetsReport } from "./report.js";
import { CannotTest, ms, type ProbeSession } from "./session.js";

/** How to make a host testable; repeated wherever the probe gives up on its targets. */
export const TARGETS_HELP =
  "the probe needs a blackhole, where connects stay pending (SYN_SENT: the SYN is silently dropped), and a live target that accepts at once; by default it starts both on loopback, otherwise pass --blackhole HOST:PORT (a port where a firewall drops SYNs) and --live HOST:PORT (a listening port)";

export interface ProbeTargets {
  readonly live: Endpoint;
  /** Destinations a rate limiter has not seen yet (aliases of the live target by default). */
  readonly destinations: readonly Endpoint[];
  /** The report so far; the blackhole's part is filled in by `startBlackhole()`. */
  report: TargetsReport;
  /**
   * The blackhole: the caller's, or a local tarpit started now. Started only
   * when needed: a tarpit holds established connections (its full accept
   * queue), which a limiter counting established connections counts too.
   */
  startBlackhole(): Promise<Endpoint>;
  /** How many established connections the local tarpit holds (0 before it starts, or when given). */
  readonly tarpitConnections: number;
  close(): Promise<void>;
}

export interface TargetOptions {
  readonly blackhole: Endpoint | null;
  readonly live: readonly Endpoint[];
  readonly via: ProxySpec | null;
}

/**
 * The targets: the caller's, or a local tarpit and listeners on loopback.
 * The probe never picks a non-loopback address by itself.
 */
export async function setupTargets(o: TargetOptions): Promise<ProbeTargets> {
  if (o.via && !isLoopback(o.via.host) && (!o.blackhole || o.live.length === 0)) {
    throw new CannotTest(
      `${describeProxy(o.via)} is on another host, where this host's loopback targets do not exist: pass --blackhole HOST:PORT and --live HOST:PORT as the proxy reaches them`,
    );
  }
  const platformProblem = blackholeProblem(process.platform, o);
  if (platformProblem) throw new CannotTest(platformProblem);
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    // Resolved up front, so a bad name fails before anything is measured.
    const given = o.blackhole ? await resolve(o.blackhole, o.via, "--blackhole") : null;
    let live: Endpoint;
    let destinations: Endpoint[];
    if (o.live.length > 0) {
      const all = await Promise.all(o.live.map((l) => resolve(l, o.via, "--live")));
      live = all[0] as Endpoint;
      destinations = all.slice(1);
    } else {
      const v4 = await LiveListener.listen({ host: "127.0.0.1" });
      closers.push(() => v4.close());
      live = { host: v4.host, port: v4.port };
      destinations = [];
      // ::1 is a second loopback address (skipped where IPv6 is off).
      const v6 = await LiveListener.listen({ host: "::1" }).catch(() => null);
      if (v6) {
        closers.push(() => v6.close());
        destinations.push({ host: "::1", port: v6.port });
      }
      // 127.0.0.1 again, written IPv4-mapped: a limiter that keys on the
      // address as given (synlimit's own emulation does) sees a new one.
      destinations.push({ host: "::ffff:127.0.0.1", port: v4.port });
    }
    let started: Promise<Endpoint> | null = null;
    let tarpitConnections = 0;
    const targets: ProbeTargets = {
      live,
      destinations,
      close,
      get tarpitConnections() {
        return tarpitConnections;
      },
      report: {
        blackhole: given && { ...given, kind: "given", verified: false, how: "not checked" },
        live: { ...live, kind: o.live.length > 0 ? "given" : "listener" },
        destinations,
        via: o.via ? { protocol: o.via.protocol, host: o.via.host, port: o.via.port } : null,
      },
      startBlackhole() {
        started ??= (async () => {
          if (given) return given;
          const tarpit = await listenTarpit().catch((error: unknown) => {
            if (error instanceof SynlimitError && error.code === "SYNLIMIT_TARPIT_UNVERIFIED") {
              throw new CannotTest(`${error.message}; ${TARGETS_HELP}`);
            }
            throw error;
          });
          closers.push(() => tarpit.close());
          // Its accept queue: Linux admits backlog + 1 handshakes.
          tarpitConnections = defaults.tarpitBacklog + 1;
          const blackhole = { host: tarpit.host, port: tarpit.port };
          targets.report = {
            ...targets.report,
            blackhole: { ...blackhole, kind: "tarpit", verified: false, how: "not checked" },
          };
          return blackhole;
        })();
        return started;
      },
    };
    return targets;
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The local tarpit's address: another host than the live listener's where
 * the OS allows it. A limiter that exempts hosts reached recently (Windows
 * XP SP2's) would exempt attempts to the live target's host — reached by
 * the baseline — and a tarpit on it would show no limit. Linux routes all
 * of 127.0.0.0/8 to lo; macOS and the BSDs only 127.0.0.1 unless aliased,
 * so there the tarpit shares 127.0.0.1 (docs/probe.md, Limits of the method).
 */
export const TARPIT_HOST = process.platform === "linux" ? "127.0.0.2" : "127.0.0.1";

async function listenTarpit(): Promise<Tarpit> {
  try {
    return await Tarpit.listen({ host: TARPIT_HOST });
  } catch (error) {
    // A Linux without 127.0.0.2 on lo (a stripped-down container): shared host, as elsewhere.
    if (TARPIT_HOST === "127.0.0.1" || !isAddressUnavailable(error)) throw error;
    return Tarpit.listen({ host: "127.0.0.1" });
  }
}

function isAddressUnavailable(error: unknown): boolean {
  return (
    error instanceof Error &&
    /EADDRNOTAVAIL/.test(`${(error as NodeJS.ErrnoException).code ?? ""} ${error.message}`)
  );
}

/** Direct dials go to an address (limiters count addresses); a proxy resolves names itself. */
async function resolve(e: Endpoint, via: ProxySpec | null, what: string): Promise<Endpoint> {
  if (via || net.isIP(e.host) !== 0) return e;
  try {
    const { address } = await lookup(e.host);
    return { host: address, port: e.port };
  } catch (error) {
    throw new CannotTest(
      `${what} ${formatEndpoint(e)}: cannot resolve ${e.host} (${(error as Error).message})`,
    );
  }
}

/** Can the kernel's TCP table on this host see the SYN_SENT sockets of the probe's attempts? */
export function tableSees(via: ProxySpec | null): boolean {
  return tcpTableSupported() && (!via || isLoopback(via.host));
}

/**
 * One attempt proves the blackhole: it must neither connect nor fail within
 * the settle window, and where the TCP table is visible it must show up in
 * SYN_SENT.
 */
export async function verifyBlackhole(
  s: ProbeSession,
  localTarpit: boolean,
): Promise<{ verified: boolean; how: string }> {
  // Where SYNs are lost, one of the tarpit's own fillers may have missed
  // its handshake, leaving room in its accept queue: a connect that gets in
  // is kept open as one more filler, and the check runs again.
  for (let topUp = 0; ; topUp++) {
    const r = await verifyOnce(s, localTarpit && topUp < MAX_TOP_UPS);
    if (r !== "again") return r;
    s.record(
      "blackhole",
      "topped-up",
      `the local tarpit ${formatEndpoint(s.blackhole)} accepted a connection (one of its fillers lost its SYN?): kept open to fill its accept queue, checking again`,
    );
  }
}

/** How many connects the probe may add to its own tarpit's accept queue. */
const MAX_TOP_UPS = 4;

async function verifyOnce(
  s: ProbeSession,
  topUp: boolean,
): Promise<{ verified: boolean; how: string } | "again"> {
  const localTarpit = s.blackholeIsTarpit;
  s.progress(`checking that ${formatEndpoint(s.blackhole)} holds attempts pending …`);
  const d = s.dial(s.blackhole, { keep: topUp });
  try {
    await d.sent;
    const seen = tableSees(s.via)
      ? await pollSynSent(
          s.blackhole,
          s.via ? "any" : process.pid,
          (n) => n > 0 || d.outcome !== null,
          s.settleMs,
          s.clock,
          s.signal,
        )
      : null;
    // A remote blackhole could still answer within a round trip; a local
    // tarpit seen in SYN_SENT cannot (its accept queue drops every SYN).
    const left = localTarpit && seen?.met ? 0 : s.settleMs - (s.clock.now() - d.startedAt);
    const early = d.outcome ?? (left > 0 ? await s.wait(d.done, left) : undefined);
    if (early) {
      if (early.kind === "connected" && topUp) return "again";
      if (early.kind === "error" && early.stage !== "target") {
        throw new CannotTest(`could not reach the blackhole: ${early.message}`);
      }
      const what =
        early.kind === "connected"
          ? "accepted the connection"
          : early.kind === "error"
            ? `answered at once (${early.code})`
            : "ended the attempt";
      // The hint to pass --blackhole is for the probe's own tarpit; a given
      // blackhole that answered needs another address, not the same flag.
      const help = localTarpit
        ? TARGETS_HELP
        : early.kind === "error" && (early.code === "ENETUNREACH" || early.code === "EHOSTUNREACH")
          ? "this host has no route to it: give --blackhole an address this host can reach, on a port where a firewall silently drops SYNs"
          : "give --blackhole a port where a firewall silently drops SYNs (not one that refuses or accepts), or a machine running synlimit tarpit";
      throw new CannotTest(
        `the blackhole ${formatEndpoint(s.blackhole)} ${what}, so no attempt stayed pending; ${help}`,
      );
    }
    const verified = seen?.met === true;
    const how = verified
      ? `an attempt stayed in SYN_SENT in the kernel's TCP table (${s.via ? "the proxy's" : "this process's"} socket)`
      : seen
        ? `no answer within ${ms(s.settleMs)} ms, but no SYN_SENT socket to it appeared in the TCP table (held back before its SYN?)`
        : `no answer within ${ms(s.settleMs)} ms (not checked in a TCP table: ${tcpTableSupported() ? "the proxy is on another host" : `no /proc TCP table on ${process.platform}`})`;
    s.record(
      "blackhole",
      verified ? "verified" : "pending",
      `blackhole ${formatEndpoint(s.blackhole)}: ${how}`,
    );
    return { verified, how };
  } finally {
    // A top-up that got in stays open (the session resets it at the end).
    if (!(topUp && d.outcome?.kind === "connected")) d.cancel();
  }
}
