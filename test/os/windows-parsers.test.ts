import assert from "node:assert/strict";
import { test } from "node:test";
import { netstatSynSent, parseNetstatRows } from "../../src/os/windows/netstat.js";
import { parseNetTcpConnection } from "../../src/os/windows/tcp-connection.js";
import {
  likelyTemplate,
  parseNetTcpSetting,
  windowsSchedule,
} from "../../src/os/windows/tcp-setting.js";
import {
  NET_TCP_CONNECTION_PS7_NAMES,
  NET_TCP_CONNECTION_PS51,
  NET_TCP_CONNECTION_SYNLIMIT,
  NET_TCP_SETTING_CIM,
  NET_TCP_SETTING_CURRENT,
  NET_TCP_SETTING_SINGLE_OLD,
  NETSTAT_DE,
  NETSTAT_EN,
  NETSTAT_UNKNOWN_LANGUAGE,
} from "../fixtures/windows.js";

test("Get-NetTCPSetting JSON: every template, Automatic left unset, Internet chosen", () => {
  const templates = parseNetTcpSetting(NET_TCP_SETTING_CURRENT);
  assert.equal(templates.length, 6);
  assert.deepEqual(templates[0], {
    settingName: "Automatic",
    initialRtoMs: null,
    maxSynRetransmissions: null,
  });
  assert.deepEqual(likelyTemplate(templates), {
    settingName: "Internet",
    initialRtoMs: 1000,
    maxSynRetransmissions: 4,
  });
});

test("Get-NetTCPSetting JSON: a bare object (one template, BOM first) and a whole CIM instance", () => {
  assert.deepEqual(parseNetTcpSetting(NET_TCP_SETTING_SINGLE_OLD), [
    { settingName: "Internet", initialRtoMs: 3000, maxSynRetransmissions: 2 },
  ]);
  assert.deepEqual(parseNetTcpSetting(NET_TCP_SETTING_CIM), [
    { settingName: "Datacenter", initialRtoMs: 1000, maxSynRetransmissions: 2 },
  ]);
  assert.deepEqual(parseNetTcpSetting("  \r\n"), []);
  assert.throws(() => parseNetTcpSetting("InitialRto(ms) : 1000"), SyntaxError);
  assert.throws(() => parseNetTcpSetting('[{"InitialRtoMs":1000}]'), /entry 0 has no SettingName/);
});

test("the schedule a template implies: today's 1 s × 4 and the field host's 3 s × 2 give up at 21 s", () => {
  assert.deepEqual(windowsSchedule(1000, 4), {
    synAtMs: [0, 1000, 3000, 7000, 15000],
    giveUpMs: 21_000,
    basis: "measured",
  });
  assert.deepEqual(windowsSchedule(3000, 2), {
    synAtMs: [0, 3000, 9000],
    giveUpMs: 21_000,
    basis: "measured",
  });
  assert.equal(windowsSchedule(1000, 2).giveUpMs, 7_000);
  assert.equal(windowsSchedule(1000, 6).giveUpMs, 123_000);
  // Not measured anywhere: doubling, and said so.
  assert.deepEqual(windowsSchedule(1000, 3), {
    synAtMs: [0, 1000, 3000, 7000],
    giveUpMs: 15_000,
    basis: "estimated",
  });
  assert.equal(windowsSchedule(1000, 7).synAtMs.at(-1), 63_000 + 60_000, "RTO capped at 60 s");
});

test("Get-NetTCPConnection JSON: SynSent and Bound rows with process, state and creation time", () => {
  const rows = parseNetTcpConnection(NET_TCP_CONNECTION_SYNLIMIT);
  assert.equal(rows.length, 4);
  assert.deepEqual(rows[0], {
    localAddress: "127.0.0.10",
    localPort: 49712,
    remoteAddress: "127.0.0.7",
    remotePort: 4317,
    state: "SynSent",
    pid: 4242,
    processName: "w3wp",
    createdAt: Date.UTC(2026, 10, 28, 9, 0, 0),
  });
  assert.equal(rows[3]?.state, "Bound");
  assert.equal(rows[2]?.remoteAddress, "::1");
});

test("Get-NetTCPConnection JSON as PowerShell 5.1 and 7 write it by default", () => {
  const [ps51] = parseNetTcpConnection(NET_TCP_CONNECTION_PS51);
  assert.equal(ps51?.state, "SynSent");
  assert.equal(ps51?.createdAt, 1795856400000);
  assert.equal(ps51?.processName, null);
  const [ps7] = parseNetTcpConnection(NET_TCP_CONNECTION_PS7_NAMES);
  assert.equal(ps7?.state, "SynSent");
  assert.equal(ps7?.createdAt, Date.UTC(2026, 10, 28, 9, 0, 0));
  assert.deepEqual(parseNetTcpConnection(""), []);
  assert.throws(
    () => parseNetTcpConnection('[{"LocalAddress":"127.0.0.1","State":3}]'),
    /entry 0 lacks an address, port, state or process/,
  );
  assert.throws(
    () => parseNetTcpConnection(NET_TCP_CONNECTION_PS51.replace('"State":3', '"State":42')),
    /lacks .* state/,
  );
});

test("netstat -ano, English: TCP rows by shape, SYN_SENT picked out, IPv6 zone dropped", () => {
  assert.equal(parseNetstatRows(NETSTAT_EN).length, 8);
  const pending = netstatSynSent(NETSTAT_EN);
  assert.deepEqual(
    pending.map((p) => [p.pid, p.remote.host, p.remote.port, p.stateGuessed]),
    [
      [4242, "127.0.0.7", 4317, false],
      [4242, "127.0.0.7", 4318, false],
      [512, "fe80::7", 389, false],
    ],
  );
});

test("netstat -ano, German: SYN_GESENDET is SYN_SENT, SYN_EMPFANGEN is not", () => {
  const pending = netstatSynSent(NETSTAT_DE);
  assert.deepEqual(
    pending.map((p) => [p.pid, p.stateText, p.stateGuessed]),
    [[4242, "SYN_GESENDET", false]],
  );
});

test("netstat -ano, a language without names here: a SYN_* state on a non-listening port counts, flagged as guessed", () => {
  const pending = netstatSynSent(NETSTAT_UNKNOWN_LANGUAGE);
  assert.deepEqual(
    pending.map((p) => [p.local.port, p.stateText, p.stateGuessed]),
    [[49712, "SYN_XYZ", true]],
  );
});
