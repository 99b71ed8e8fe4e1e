import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A fresh self-signed certificate, for localhost and 127.0.0.1 unless `san`
 * and the subject's `cn` say otherwise, made by the openssl CLI at test time
 * (no key material is checked in for these tests).
 */
export function freshCert(
  san = "DNS:localhost,IP:127.0.0.1",
  cn = "localhost",
): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "synlimit-cert-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        `/CN=${cn}`,
        "-addext",
        `subjectAltName=${san}`,
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
