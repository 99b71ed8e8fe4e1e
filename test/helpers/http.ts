import type http from "node:http";
import type https from "node:https";

/** A GET with node:http or node:https, resolving with the status and body text. */
export function get(
  module: typeof http | typeof https,
  options: https.RequestOptions,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    module
      .get(options, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}
