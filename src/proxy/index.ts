export { Acl, canonicalAddress, canonicalHost } from "./acl.js";
export { type ProxyChannelName, proxyChannelNames } from "./channels.js";
export { type GateConfig, loadConfig, parseConfig } from "./config.js";
export { Credentials, type UserEntry } from "./credentials.js";
export type { IdentityKind } from "./identity.js";
export type { LimitSettings } from "./limits.js";
export {
  type AdminOptions,
  type AttemptInfo,
  GateProxy,
  type GateProxyOptions,
  type ProxyStats,
} from "./server.js";
