import assert from "node:assert/strict";
import { test } from "node:test";
import { parseTcpTable } from "../../../src/os/linux/tcp-table.js";

test("parses /proc/net/tcp and tcp6 rows, addresses in kernel byte order", () => {
  const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B9A0 0100007F:982D 02 00000001:00000000 01:00000000 00000000     0        0 6192 2 0000000000000000 100 0 0 10 -1
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1468 1 0000000000000000 100 0 0 10 0`;
  assert.deepEqual(parseTcpTable(v4), [
    {
      local: { host: "127.0.0.1", port: 0xb9a0 },
      remote: { host: "127.0.0.1", port: 0x982d },
      state: "SYN_SENT",
      inode: 6192,
    },
    {
      local: { host: "0.0.0.0", port: 22 },
      remote: { host: "0.0.0.0", port: 0 },
      state: "LISTEN",
      inode: 1468,
    },
  ]);
  const v6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C351 02 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 20 4 30 10 -1`;
  assert.deepEqual(parseTcpTable(v6), [
    {
      local: { host: "::1", port: 8080 },
      remote: { host: "::1", port: 50000 },
      state: "ESTABLISHED",
      inode: 777,
    },
    {
      local: { host: "::ffff:127.0.0.1", port: 8080 },
      remote: { host: "::ffff:127.0.0.1", port: 50001 },
      state: "SYN_SENT",
      inode: 778,
    },
  ]);
  assert.deepEqual(parseTcpTable("header only\n\ngarbage line"), []);
});
