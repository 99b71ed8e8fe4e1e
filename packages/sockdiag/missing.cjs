// Runs when `node-gyp rebuild` fails at install (no compiler, not Linux).
// The install goes on: synlimit gate's `process`/`exe` identities fall back
// to reading /proc/net/tcp.
if (process.platform === "linux") {
  process.stderr.write(
    "synlimit-sockdiag: the native sock_diag lookup was not built (needs python3, make and a C compiler); " +
      "`synlimit gate --identity process` will read /proc/net/tcp instead, which is slow on busy hosts.\n",
  );
}
