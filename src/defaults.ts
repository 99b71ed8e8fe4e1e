/**
 * Every default in one place, each with the reason it has this value.
 * Durations are unscaled: the gate multiplies them by its `timeScale`.
 */
export const defaults = {
  /** The incident: one concurrent connect attempt per process. */
  maxInFlight: 1,
  /**
   * Windows 10/11 and Server 2019/2022: InitialRto 1 s, MaxSynRetransmissions 4,
   * so SYN at 0, 1, 3, 7, 15 s, then give up at 21 s (docs/windows.md).
   */
  windowsSynAtMs: [0, 1_000, 3_000, 7_000, 15_000] as readonly number[],
  windowsFailAtMs: 21_000,
  /** The field host (older Windows): InitialRto 3 s, 2 retransmissions: SYN at 0, 3, 9 s, fail at 21 s. */
  windows2008SynAtMs: [0, 3_000, 9_000] as readonly number[],
  windows2008FailAtMs: 21_000,
  /**
   * Linux with net.ipv4.tcp_syn_retries = 6: retransmits after 1, 2, 4, 8, 16
   * and 32 s, then waits 64 s more before giving up, 127 s in all.
   */
  linuxSynAtMs: [0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000] as readonly number[],
  linuxFailAtMs: 127_000,
  /** Williamson's virus throttle (HP Labs, 2002): one new host per second… */
  rateNewDestinationsPerSecond: 1,
  /** …while the five most recently contacted hosts pass freely. */
  rateWorkingSetSize: 5,
  /** Faithful time unless asked otherwise: the incident is about real seconds. */
  timeScale: 1,
  /** The incident's test program started its second thread 500 ms after the first. */
  connectTestDelayMs: 500,
  /** The incident's live target was a web server. */
  connectTestLivePort: 80,
  /**
   * The demo compresses the incident ten-fold so `npm start` shows the 21 s
   * wait as 2.1 s; `--real-time` restores it.
   */
  demoTimeScale: 0.1,
  /**
   * Node's listen() turns a backlog of 0 into 511, so the tarpit asks for 1:
   * Linux then admits backlog + 1 = 2 handshakes before it drops SYNs.
   */
  tarpitBacklog: 1,
  // Guard (src/guard/): a background client must never hold the host's
  // connect slot for long.
  /** Own attempt budget: one connect at a time per destination… */
  guardMaxPerDestination: 1,
  /** …and one overall, so a background client never queues several SYNs. */
  guardMaxOverall: 1,
  /**
   * Connect deadline floor. A peer measured to answer in milliseconds gets
   * this long; it is also the longest the host waits behind the one TCP
   * attempt that follows a successful preflight to a peer dying just then.
   */
  guardConnectTimeoutFloorMs: 250,
  /**
   * Connect deadline ceiling: never the OS's 21–127 s. 2 s is a slow
   * intercontinental handshake several times over, and one attempt at it is
   * 3.3 % of a 60 s outage.
   */
  guardConnectTimeoutCeilingMs: 2_000,
  /** Deadline = RTO-style srtt + 4·rttvar, times this margin, clamped to floor..ceiling. */
  guardRttMargin: 4,
  /** gRPC connection backoff: 1 s initial, ×1.6, ±20 % jitter, 120 s max. */
  backoffInitialMs: 1_000,
  backoffMultiplier: 1.6,
  backoffJitter: 0.2,
  backoffMaxMs: 120_000,
  /** Consecutive connect failures that open a destination's breaker: one, for background clients. */
  breakerFailureThreshold: 1,
  /** How long a UDP echo preflight waits for the echo. */
  preflightTimeoutMs: 500,
  /**
   * When preflights to a peer whose echo never answered keep failing (UDP
   * may be filtered while TCP is fine), one TCP attempt is still allowed
   * this often, so reconnection is never blocked forever. Five minutes: a
   * misconfiguration's safety net, well outside a 60 s outage, and at a
   * ≤ 2 s deadline under 1 % of a connect slot.
   */
  sparseTcpIntervalMs: 300_000,
  /** How long a background connect waits for the host app's connects to finish. */
  yieldMaxWaitMs: 5_000,
  /** ReconnectingLink: records kept while disconnected (drop-oldest past this). */
  linkQueueLimit: 1_000,
  /**
   * winxp-sp2: machine-wide concurrent incomplete outbound connects, XP SP2's
   * documented default (TcpipMaxHalfOpen-style limit of 10).
   */
  winxpMaxInFlight: 10,
  /**
   * winxp-sp2: a host reached within this long is "known reachable" and not
   * counted. The patent ties this to the route cache entry and gives no
   * number; 10 minutes is synlimit's choice (docs/windows.md).
   */
  winxpKnownReachableMs: 600_000,
  /**
   * Deadline for a peer never reached: RFC 6298's initial RTO (1 s), the
   * moment the OS would retransmit the SYN anyway.
   */
  guardConnectTimeoutUnmeasuredMs: 1_000,
  /**
   * Largest share of any `guardSlotWindowMs` that failed attempts to one
   * peer may hold a connect slot: 5 % of 60 s is 3 s, e.g. one attempt at
   * the 2 s cap, or twelve at the 250 ms floor.
   */
  guardMaxSlotShare: 0.05,
  /** The sliding window of that budget: the outage length the promise is stated for. */
  guardSlotWindowMs: 60_000,
  /** Per-peer state (breaker, connect times) unused this long is forgotten. */
  guardPeerIdleMs: 600_000,
  /** And never more peers than this (least recently used go first). */
  guardMaxPeers: 4_096,
  /** ReconnectingLink: bytes kept while disconnected (drop-oldest past this). */
  linkQueueLimitBytes: 4 * 1024 * 1024,
  /** ReconnectingLink.close(): how long queued bytes may take to leave before the socket is destroyed. */
  linkCloseTimeoutMs: 2_000,
  /**
   * ReconnectingLink: written bytes that do not drain this long mean a dead
   * peer (no ACKs); the connection is destroyed and the link reconnects.
   */
  linkWriteTimeoutMs: 10_000,
  /** ReconnectingLink: TCP keep-alive idle time, so an idle dead connection is found too. */
  linkKeepAliveMs: 10_000,
  /**
   * ReconnectingLink with a preflight (UDP echo): the connected peer's host
   * is probed this often, and this many probes in a row without an answer
   * mean it is gone: found within 3 × (1 s + the 500 ms echo timeout) = 4.5 s
   * (scaled), at about one datagram a second.
   */
  linkEchoIntervalMs: 1_000,
  linkEchoMisses: 3,
  // Lab (src/lab/): field durations; the lab multiplies them by its time scale.
  /**
   * The naive agent's reconnect loops. One: the field's logins took "about
   * 21 s" — the rest of one pending attempt, at most 21 s. Two loops would
   * keep an attempt queued behind the pending one and every login would
   * wait 21–42 s, which the field never saw.
   */
  labAgentChannels: 1,
  /** The naive agent retried as soon as an attempt failed: no login found the slot free. */
  labAgentRetryPauseMs: 0,
  /** Each scenario's window: six attempt timeouts, so a login's wait is seen at every phase of the agent's cycle. */
  labWindowMs: 126_000,
  /** A login every 2.5 s, a DB and an API call every 2 s: ~50 logins per window, a busy but small site. */
  labLoginIntervalMs: 2_500,
  labDbIntervalMs: 2_000,
  labApiIntervalMs: 2_000,
  // SYN watch (src/analyze/syn-watch.ts, `tarpit --show-syns`).
  /** After a first SYN, the longest initial RTO in use (old Windows' 3 s; Linux and current Windows: 1 s). */
  synWatchFirstRtoMs: 3_000,
  /** Slack on a sender's silence before it counts as given up: timer drift (Linux ~25 ms a second) and capture delay. */
  synWatchMarginMs: 1_000,
} as const;
