#!/usr/bin/env node
// Run first by `npm test`: the tests start real peers (OpenLDAP, PostgreSQL,
// Chromium, curl, proxychains4, network namespaces), never stand-ins, so the
// Debian packages that ship them must be there. As root, the missing ones are
// installed (one line says which); otherwise this stops at once with one line
// naming them and the command that installs them.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";

/** Each package the tests need, and a file that proves it is installed where dpkg is absent. */
const packages = [
  ["slapd", "/usr/sbin/slapd"], // the lab against a real OpenLDAP
  ["ldap-utils", "/usr/bin/ldapsearch"],
  ["postgresql", "/usr/lib/postgresql"], // the lab against a real PostgreSQL
  ["chromium", "/usr/bin/chromium"], // the lab's HTML report in a headless browser
  ["fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu"],
  ["curl", "/usr/bin/curl"], // real clients through the gate proxy
  ["proxychains4", "/usr/bin/proxychains4"],
  ["iptables", "/usr/sbin/iptables"], // filtered peers inside test-made network namespaces
  ["iproute2", "/usr/sbin/ip"],
  ["tcpdump", "/usr/bin/tcpdump"], // counting the SYNs on the wire
  ["openssl", "/usr/bin/openssl"], // guard tests make a fresh self-signed certificate
];

/** The packages among `names` that are not installed. */
function missingPackages(names) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const format = "-f=${Package} ${db:Status-Status}\\n";
  const r = spawnSync("dpkg-query", ["-W", format, ...names], { encoding: "utf8" });
  if (!r.error) {
    const installed = new Set(
      r.stdout
        .split("\n")
        .filter((line) => line.endsWith(" installed"))
        .map((line) => line.split(" ")[0]),
    );
    return names.filter((n) => !installed.has(n));
  }
  // No dpkg: a file each package would have installed.
  const probe = new Map(packages);
  return names.filter((n) => !existsSync(probe.get(n) ?? `/nonexistent/${n}`));
}

function installCommand(missing, root) {
  const apt = `apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  return root ? apt : `sudo ${apt}`;
}

function main(names) {
  const missing = missingPackages(names);
  if (missing.length === 0) return 0;
  const root = process.getuid?.() === 0;
  const hasApt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  if (!root || !hasApt) {
    const how = hasApt
      ? `install with: ${installCommand(missing, root)}`
      : `this system has no apt-get: install the equivalents of these Debian packages`;
    process.stderr.write(`synlimit test: missing ${missing.join(", ")}; ${how}\n`);
    return 1;
  }
  process.stderr.write(`synlimit test: installing ${missing.join(" ")} (apt-get)\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => spawnSync("apt-get", args, { env, stdio: ["ignore", "ignore", "inherit"] });
  if (run(["update", "-qq"]).status !== 0) {
    process.stderr.write("synlimit test: apt-get update failed\n");
    return 1;
  }
  const r = run(["install", "-y", "-qq", "--no-install-recommends", ...missing]);
  const still = missingPackages(missing);
  if (r.status !== 0 || still.length > 0) {
    process.stderr.write(
      `synlimit test: apt-get could not install ${still.join(", ") || missing.join(", ")}\n`,
    );
    return 1;
  }
  return 0;
}

// Package names as arguments check those instead of the tests' list.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const names = process.argv.slice(2);
  process.exitCode = main(names.length > 0 ? names : packages.map(([name]) => name));
}
