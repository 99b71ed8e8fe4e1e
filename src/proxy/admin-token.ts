import { readFileSync } from "node:fs";
import { usageError } from "../errors.js";
import { proxyLimits } from "./options.js";

/** The token is the file's first line; the file is never echoed. */
export function readAdminToken(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw usageError(
      `${where} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const token = (text.split(/\r?\n/)[0] ?? "").trim();
  if (token.length < proxyLimits.minAdminTokenLength || /\s/.test(token)) {
    throw usageError(
      `${where} ${file}: the first line must be a token of at least ${proxyLimits.minAdminTokenLength} characters without spaces`,
    );
  }
  return token;
}
