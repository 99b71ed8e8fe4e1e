export { EmbeddedLdap, type EmbeddedLdapOptions } from "./ldap.js";
export { startPeers } from "./peers.js";
export { EmbeddedPostgres, type EmbeddedPostgresOptions } from "./postgres.js";
export { type PostgresServerService, startPostgresServer } from "./postgres-server.js";
export type { RealService } from "./process.js";
export { type SlapdService, startSlapd } from "./slapd.js";
