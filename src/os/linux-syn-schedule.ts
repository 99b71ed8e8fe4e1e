/** Linux's initial RTO for a SYN (TCP_TIMEOUT_INIT, RFC 6298). */
export const LINUX_INITIAL_RTO_MS = 1_000;
/** Linux's TCP_RTO_MAX, the default of net.ipv4.tcp_rto_max_ms where it exists. */
export const LINUX_RTO_MAX_MS = 120_000;

/**
 * When Linux resends an unanswered SYN and when it gives up. The first
 * `tcp_syn_linear_timeouts` resends (newer kernels that have the sysctl; default 4) keep the
 * initial RTO, later ones double it, capped at the maximum RTO. Those linear
 * resends come on top of `tcp_syn_retries`: the kernel allows
 * retries + linear resends (net/ipv4/tcp_timer.c, tcp_write_timeout), so a
 * host with that sysctl with the defaults 6 and 4 resends at 1, 2, 3, 4, 5, 7, 11, 19,
 * 35 and 67 s and gives up at 131 s (seen with tcpdump against the tarpit).
 */
export function linuxSynSchedule(
  retries: number,
  linearTimeouts = 0,
  initialRtoMs = LINUX_INITIAL_RTO_MS,
  rtoMaxMs = LINUX_RTO_MAX_MS,
): { retransmitAtMs: number[]; giveUpAtMs: number } {
  const resends = retries + linearTimeouts;
  const at: number[] = [];
  let t = 0;
  for (let i = 1; i <= resends + 1; i++) {
    t += Math.min(rtoMaxMs, initialRtoMs * 2 ** Math.max(0, i - 1 - linearTimeouts));
    if (i <= resends) at.push(t);
  }
  return { retransmitAtMs: at, giveUpAtMs: t };
}
