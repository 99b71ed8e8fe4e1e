export {
  type SenderStopped,
  type SynArrival,
  SynWatch,
  type SynWatchEvents,
  type SynWatchOptions,
} from "./analyze/syn-watch.js";
export { type Clock, systemClock, type Timer } from "./clock.js";
export { defaults } from "./defaults.js";
export * from "./emulate/index.js";
export * from "./errors.js";
export * from "./gate/index.js";
export { listHolders } from "./os/linux/holders.js";
export { readTcpTable, synSentOf, type TcpEntry, type TcpState } from "./os/linux/tcp-table.js";
export { probeChannelNames } from "./probe/channels.js";
export * from "./probe/connect-test.js";
export { type ProbeOptions, probe } from "./probe/probe.js";
export type * from "./probe/report.js";
