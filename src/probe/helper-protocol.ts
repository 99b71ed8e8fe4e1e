import type { ProxySpec } from "./address.js";
import type { DialOutcome } from "./dial.js";

/** Parent → helper, one JSON object per line on the helper's stdin. */
export type HelperCommand =
  | { op: "init"; via: ProxySpec | null }
  | { op: "dial"; id: number; host: string; port: number }
  | { op: "cancel"; id: number };

/** Helper → parent, one JSON object per line on the helper's stdout. */
export type HelperMessage =
  | { ready: true; pid: number }
  | { id: number; sent: true }
  | { id: number; outcome: DialOutcome };
