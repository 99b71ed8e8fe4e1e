export { type Clock, systemClock, type Timer } from "./clock.js";
export { defaults } from "./defaults.js";
export * from "./emulate/index.js";
export * from "./errors.js";
export * from "./gate/index.js";
export * from "./probe/connect-test.js";
export { readTcpTable, synSentOf, type TcpEntry, type TcpState } from "./probe/tcp-table.js";
