/**
 * Connect-time estimator in the manner of TCP's RTO (RFC 6298): smoothed
 * time and variation of recent successful connects, so the deadline follows
 * the peer instead of the OS's 21–127 s.
 */
export class ConnectTimeEstimator {
  #srtt: number | null = null;
  #rttvar = 0;

  observe(ms: number): void {
    if (this.#srtt === null) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
      return;
    }
    this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
    this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
  }

  /** (srtt + 4·rttvar) · margin, or null until a connect has been measured. */
  rtoMs(margin: number): number | null {
    if (this.#srtt === null) return null;
    return (this.#srtt + 4 * this.#rttvar) * margin;
  }
}
