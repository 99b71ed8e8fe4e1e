/**
 * Connect-time estimator in the manner of TCP's RTO (RFC 6298): smoothed
 * time and variation of recent successful connects, so the deadline follows
 * the peer instead of the OS's 21–127 s.
 */
export class ConnectTimeEstimator {
  #srtt: number | null = null;
  #rttvar = 0;

  constructor(
    readonly floorMs: number,
    readonly ceilingMs: number,
    readonly margin: number,
  ) {}

  observe(ms: number): void {
    if (this.#srtt === null) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
      return;
    }
    this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
    this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
  }

  /** The deadline for the next connect: the ceiling until something is measured. */
  deadlineMs(): number {
    if (this.#srtt === null) return this.ceilingMs;
    const rto = (this.#srtt + 4 * this.#rttvar) * this.margin;
    return Math.min(this.ceilingMs, Math.max(this.floorMs, rto));
  }
}
