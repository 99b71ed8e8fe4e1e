import net from "node:net";

/**
 * The one loopback rule, for every part that must stay on this machine:
 * tests and defaults dial only loopback, the tarpit and the lab's services
 * bind only loopback, the gate's admin API answers only loopback clients.
 * BlockList compares addresses, not spellings: 0:0:0:0:0:0:0:1 is ::1, and
 * ::ffff:127.0.0.1 is matched by the IPv4 rule. Only literal addresses in
 * their standard form count: inet_aton spellings (0127.0.0.1 is 87.0.0.1,
 * 0x7f000001, 127.1) are refused here; the proxy canonicalises those first.
 */
const loopback = new net.BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms, as literal addresses ([::1] too). */
export function isLoopbackAddress(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (net.isIPv4(h)) return loopback.check(h, "ipv4");
  if (net.isIPv6(h)) return loopback.check(h, "ipv6");
  return false;
}

/** A loopback address, or the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return isLoopbackAddress(host) || host.toLowerCase() === "localhost";
}
