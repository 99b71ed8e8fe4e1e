import type net from "node:net";
import { addressInUse } from "../errors.js";

/** Binds `server` or throws SYNLIMIT_ADDRESS_IN_USE naming `what`; no listener is left behind. */
export function listenOn(
  server: net.Server,
  what: string,
  options: net.ListenOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(
        options.path
          ? addressInUse(what, options.path, error)
          : addressInUse(what, { host: options.host ?? "", port: options.port ?? 0 }, error),
      );
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(options);
  });
}
