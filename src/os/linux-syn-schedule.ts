/** Linux's initial RTO for a SYN (TCP_TIMEOUT_INIT, RFC 6298). */
export const LINUX_INITIAL_RTO_MS = 1_000;
/** Linux's TCP_RTO_MAX, the default of net.ipv4.tcp_rto_max_ms where it exists. */
export const LINUX_RTO_MAX_MS = 120_000;

/**
 * When Linux resends an unanswered SYN and when it gives up. The first
 * `tcp_syn_linear_timeouts` resends (newer kernels that have the sysctl;
 * default 4) keep the initial RTO, later ones double it, capped at the
 * maximum RTO. The give-up is time-based (net/ipv4/tcp_timer.c,
 * retransmits_timed_out and tcp_model_timeout): at each retransmission timer
 * the kernel gives up once the time since the first SYN has reached what
 * `tcp_syn_retries` doubling RTOs would take (1 + 2 + … + 2^retries s, with
 * RTOs past the maximum counted at the maximum). With linear timeouts the
 * timers come more often, so the give-up falls on the first timer at or
 * after that time: retries 6 and 4 linear resend at 1, 2, 3, 4, 5, 7, 11,
 * 19, 35 and 67 s and give up at 131 s; retries 1 at 1 and 2 s, giving up at
 * 3 s; retries 2 give up at 7 s; 3 at 19 s (all seen with
 * `synlimit probe --measure-give-up` in a namespace, and tcpdump).
 */
export function linuxSynSchedule(
  retries: number,
  linearTimeouts = 0,
  initialRtoMs = LINUX_INITIAL_RTO_MS,
  rtoMaxMs = LINUX_RTO_MAX_MS,
): { retransmitAtMs: number[]; giveUpAtMs: number } {
  const timeoutMs = modelTimeoutMs(retries, initialRtoMs, rtoMaxMs);
  const at: number[] = [];
  let t = 0;
  for (let i = 1; ; i++) {
    t += Math.min(rtoMaxMs, initialRtoMs * 2 ** Math.max(0, i - 1 - linearTimeouts));
    if (t >= timeoutMs) return { retransmitAtMs: at, giveUpAtMs: t };
    at.push(t);
  }
}

/** The kernel's tcp_model_timeout: how long `boundary` doubling RTOs take. */
function modelTimeoutMs(boundary: number, rtoBaseMs: number, rtoMaxMs: number): number {
  const threshold = Math.floor(Math.log2(rtoMaxMs / rtoBaseMs));
  return boundary <= threshold
    ? (2 ** (boundary + 1) - 1) * rtoBaseMs
    : (2 ** (threshold + 1) - 1) * rtoBaseMs + (boundary - threshold) * rtoMaxMs;
}
