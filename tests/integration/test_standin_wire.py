#!/usr/bin/env python3
"""The SQL Server stand-in on the wire, checked by tools no one here wrote.

1. FreeTDS (tsql) gets past PRELOGIN: its TDSDUMP shows the reply received and
   decoded, and a LOGIN7 sent and refused with error 18456.
2. tshark's TDS dissector decodes our PRELOGIN request and the stand-in's reply
   (and the agent's own probe, `$EDGEWARDEN probe tds`) with version
   and encryption fields and no malformed or error-severity expert items.
3. Every failure mode, seen through a raw socket and /proc.

Environment (meson sets it): STANDIN, EDGEWARDEN, SOURCE_ROOT. Everything this
file starts is stopped in cleanups, even when a test fails; the whole file runs
in well under a minute.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import standin  # noqa: E402
from standin import (ENCRYPT_NOT_SUP, ENCRYPT_OFF, StandIn, build_prelogin,  # noqa: E402
                     parse_prelogin_reply, prelogin, recv_packet)

VERSION = "16.0.4135.4"
TLS_ALERT_UNEXPECTED_MESSAGE = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0A])
TLS_ALERT_HANDSHAKE_FAILURE = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])


def proc_stat(pid):
    """(state, ppid) from /proc/<pid>/stat, or None when the pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def wait_gone(pid, timeout=5.0, zombie_ok=False):
    """True once pid no longer exists (or is no longer a sqlservr). With zombie_ok
    an exited process not yet reaped by its (new) parent counts as gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = proc_stat(pid)
        if st is None or proc_comm(pid) != "sqlservr" or (zombie_ok and st[0] == "Z"):
            return True
        time.sleep(0.02)
    return False


def recv_all(sock, timeout):
    """Everything until EOF or timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return buf
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


class StandInCase(unittest.TestCase):
    def start(self, **kw):
        kw.setdefault("restart_delay_ms", 100)
        s = StandIn(**kw)
        s.start()
        self.addCleanup(self._stop, s)
        return s

    def _stop(self, s):
        s.stop()
        # A failing test shows what the stand-in said (best effort: private API).
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            sys.stderr.write("--- sqlservr log (%s) ---\n%s\n" % (self.id(), s.log()))


# --------------------------------------------------------------- FreeTDS

def tdsdump_packets(text):
    """[(direction, bytes)] from a TDSDUMP: 'Sending packet' / 'Received packet'
    followed by hex dump lines '0000 12 01 00 3a ...-... |ascii|'."""
    packets, current = [], None
    for line in text.splitlines():
        if line.endswith("Sending packet") or line.endswith("Received packet"):
            current = ("sent" if line.endswith("Sending packet") else "received", bytearray())
            packets.append(current)
            continue
        m = re.match(r"^([0-9a-f]{4}) (.*?)\s*\|", line)
        if current is not None and m:
            current[1].extend(bytes.fromhex(m.group(2).replace("-", " ")))
        elif current is not None and line.strip() == "":
            current = None
    return [(d, bytes(b)) for d, b in packets]


class FreeTDSTest(StandInCase):
    def test_tsql_gets_past_prelogin(self):
        s = self.start(encryption="not_supported")
        with tempfile.TemporaryDirectory() as d:
            dump = os.path.join(d, "tds.dump")
            env = dict(os.environ, TDSDUMP=dump)
            env.pop("TDSVER", None)
            res = subprocess.run(["tsql", "-H", "127.0.0.1", "-p", str(s.port), "-U", "sa",
                                  "-P", "x"], stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=10, env=env)
            with open(dump, errors="replace") as f:
                text = f.read()
        out = (res.stdout + res.stderr).decode(errors="replace")
        msg = "tsql output:\n%s\nTDSDUMP:\n%s" % (out, text)

        packets = tdsdump_packets(text)
        self.assertGreaterEqual(len(packets), 2, msg)
        direction, request = packets[0]
        self.assertEqual(direction, "sent", msg)
        self.assertEqual(request[0], 0x12, "FreeTDS's first packet is a PRELOGIN\n" + msg)
        direction, reply = packets[1]
        self.assertEqual(direction, "received", msg)
        decoded = parse_prelogin_reply(reply)  # the bytes FreeTDS received
        self.assertEqual(decoded["version"], VERSION)
        self.assertEqual(decoded["encryption"], ENCRYPT_NOT_SUP)

        # FreeTDS decoded the reply: it logs the server's ENCRYPTION byte it
        # found (2, not supported), then sends its LOGIN7 without TLS.
        self.assertRegex(text, r"detected crypt flag 2", msg)
        self.assertRegex(text, r"sending TDS 7\+ login packet", msg)
        self.assertLess(text.index("detected crypt flag"), text.index("login packet"), msg)
        # ... and processed the stand-in's answer to that LOGIN7.
        self.assertRegex(text, r"looking for login token, got\s+aa\(ERROR\)", msg)
        self.assertRegex(text, r"reading message 18456 from server", msg)
        self.assertRegex(text, r"looking for login token, got\s+fd\(DONE\)", msg)
        self.assertIn("Login failed for user 'sa'.", out, msg)


# ---------------------------------------------------------------- tshark

class Capture:
    """Loopback capture with a port filter. dumpcap is the capture engine tshark
    itself runs for -w; started directly it is ready in a fraction of the time
    tshark needs to load its dissectors."""

    def __init__(self, port, directory):
        self.port = port
        self.path = os.path.join(directory, "capture.pcapng")
        self.log_path = os.path.join(directory, "capture.log")
        self.proc = None

    def __enter__(self):
        tool = shutil.which("dumpcap") or shutil.which("tshark")
        argv = [tool, "-i", "lo", "-f", "tcp port %d" % self.port, "-w", self.path, "-q"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        # The file gets its header once the interface is open and filtered.
        deadline = time.monotonic() + 20
        while not (os.path.exists(self.path) and os.path.getsize(self.path) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path, errors="replace") as f:
                    raise unittest.SkipTest("cannot capture on lo: %s" % f.read().strip())
            time.sleep(0.05)
        time.sleep(0.2)
        return self

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __exit__(self, *exc):
        # libpcap hands packets over in blocks, retired after a 250 ms timeout
        # (dumpcap's read timeout); stopping sooner can lose the last ones.
        time.sleep(0.75)
        self.stop()
        return False


FIELDS = [
    "frame.number", "frame.protocols", "tcp.srcport", "tcp.dstport", "tds.type",
    "tds.prelogin.option.token", "tds.prelogin.option.version",
    "tds.prelogin.option.subbuild", "tds.prelogin.option.encryption",
    "tds.prelogin.option.mars", "tds.error.number", "tds.done.status",
    "_ws.expert.severity", "_ws.expert.message",
]
PI_WARN = 0x00600000  # epan/proto.h: expert severities
PI_ERROR = 0x00800000


class TsharkTest(StandInCase):
    def agent_probe(self, s):
        """The agent's own PRELOGIN exchange: `edgewarden probe tds --json`."""
        agent = os.environ.get("EDGEWARDEN")
        self.assertTrue(agent and os.access(agent, os.X_OK), "EDGEWARDEN must name the built agent")
        res = subprocess.run([agent, "probe", "tds", s.address, "--json"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        self.assertEqual(res.returncode, 0, (res.stdout + res.stderr).decode()[-300:])
        result = json.loads(res.stdout.decode().strip().splitlines()[-1])
        sys.stderr.write("agent probe: %s\n" % json.dumps(result))
        return result

    def test_prelogin_decodes_cleanly(self):
        s = self.start(encryption="not_supported")
        with tempfile.TemporaryDirectory() as d:
            with Capture(s.port, d) as cap:
                ours = prelogin(s.host, s.port, encryption=ENCRYPT_OFF)
                agent = self.agent_probe(s)
                # a LOGIN7 and the stand-in's refusal, too
                subprocess.run(["tsql", "-H", s.host, "-p", str(s.port), "-U", "sa",
                                "-P", "x"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
            self.assertEqual(ours["version"], VERSION)
            decode = ["tshark", "-r", cap.path, "-d", "tcp.port==%d,tds" % s.port]
            fields = subprocess.run(
                decode + ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
                          "-E", "aggregator=,"] + sum((["-e", f] for f in FIELDS), []),
                capture_output=True, timeout=30)
            verbose = subprocess.run(decode + ["-V", "-Y", "tds"], capture_output=True,
                                     timeout=30)
            bad = subprocess.run(decode + ["-Y", "_ws.malformed || _ws.expert.severity == error"],
                                 capture_output=True, timeout=30)
        rows = [dict(zip(FIELDS, line.split("\t")))
                for line in fields.stdout.decode().splitlines() if line.strip()]
        text = verbose.stdout.decode(errors="replace")
        table = "\n".join("\t".join(r.get(f, "") for f in FIELDS) for r in rows)
        msg = "tshark fields:\n%s\nstderr: %s" % (table, fields.stderr.decode()[-500:])
        self.assertTrue(rows, msg)

        # No frame is malformed or carries an error-severity expert item (a
        # dissector exception shows as "Malformed Packet" at severity error),
        # and no TDS frame carries even a warning ("Bogus token size", ...).
        self.assertEqual(bad.returncode, 0, bad.stderr)
        self.assertEqual(bad.stdout.decode().strip(), "", msg)
        for r in rows:
            # The stand-in's own frames: not even a warning. (FreeTDS's LOGIN7
            # draws a GSS-API "Unknown header" warning; not ours to judge.)
            limit = PI_WARN if r["tcp.srcport"] == str(s.port) else PI_ERROR
            for sev in filter(None, r["_ws.expert.severity"].split(",")):
                self.assertLess(int(sev, 0), limit, msg)

        port = str(s.port)
        requests = [r for r in rows if r["tds.type"] == "18" and r["tcp.dstport"] == port
                    and r["tds.prelogin.option.version"]]
        replies = [r for r in rows if r["tds.type"] == "4" and r["tcp.srcport"] == port
                   and r["tds.prelogin.option.version"]]
        expected = 3  # our client, the agent, tsql
        self.assertEqual(len(requests), expected, msg)
        self.assertEqual(len(replies), expected, msg)
        for r in replies:
            # VERSION is one 32-bit field to Wireshark: major, minor, build BE.
            v = int(r["tds.prelogin.option.version"], 0)
            self.assertEqual((v >> 24, (v >> 16) & 0xFF, v & 0xFFFF), (16, 0, 4135), msg)
            self.assertEqual(r["tds.prelogin.option.subbuild"], "4", msg)
            self.assertEqual(r["tds.prelogin.option.encryption"], "2", msg)
            self.assertEqual(r["tds.prelogin.option.token"], "0,1,2,3,4,255", msg)
            self.assertEqual(r["tds.prelogin.option.mars"], "0", msg)
        for r in requests:
            self.assertTrue(r["tds.prelogin.option.encryption"], msg)
        # The agent decodes what tshark decodes. Sub-build is little-endian on
        # the wire: SqlClient writes it so, tshark's
        # tds.prelogin.option.subbuild reads it so.
        self.assertEqual(agent.get("outcome"), "ok", agent)
        self.assertEqual(agent.get("server_version"), VERSION,
                         "agent decodes PRELOGIN VERSION differently from tshark "
                         "(sub-build is little-endian): %s" % agent)
        errors = [r for r in rows if r["tds.error.number"]]
        self.assertEqual([r["tds.error.number"] for r in errors], ["18456"], msg)

        self.assertIn("TDS7 pre-login message", text)
        self.assertIn("Pre-Login Message", text)
        self.assertIn("Version: 16.0.4135", text)
        self.assertIn("Encryption is not available (2)", text)
        self.assertIn("Encryption is available but off (0)", text)  # our request


# ------------------------------------------------------------------ modes

class ModeTest(StandInCase):
    def test_ok_reply_shape(self):
        s = self.start()
        r = prelogin(s.host, s.port)
        self.assertEqual(r["header"], (0x04, 0x01, 43, 0, 1, 0))
        self.assertEqual(r["version"], VERSION)
        self.assertEqual(r["encryption"], ENCRYPT_OFF)
        self.assertEqual([(t, len(v)) for t, v in r["options"]],
                         [(0, 6), (1, 1), (2, 1), (3, 0), (4, 1)])

    def test_options(self):
        s = self.start(version="15.0.2000.5", encryption="required")
        r = prelogin(s.host, s.port)
        self.assertEqual(r["version"], "15.0.2000.5")
        self.assertEqual(r["encryption"], 3)

    def test_process_shape(self):
        s = self.start()
        parent, engine = s.parent_pid, s.engine_pid
        self.assertEqual(proc_comm(parent), "sqlservr")
        self.assertEqual(proc_comm(engine), "sqlservr")
        self.assertEqual(proc_stat(engine)[1], parent)
        self.assertEqual(s.proc.pid, parent)
        self.assertEqual(proc_stat(parent)[1], os.getpid())

    def test_status(self):
        s = self.start()
        st = s.status()
        for key in ("mode", "parent", "engine", "restarts", "connections"):
            self.assertIn(key, st)
        self.assertEqual(st["mode"], "ok")
        self.assertEqual(st["parent"], s.parent_pid)
        self.assertEqual(st["restarts"], 0)
        self.assertEqual(st["port"], s.port)
        prelogin(s.host, s.port)
        self.assertGreaterEqual(s.status()["accepted"], 1)
        with self.assertRaises(standin.StandInError):
            s.mode("nonsense")

    def test_refuse(self):
        s = self.start()
        s.mode("refuse")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((s.host, s.port), timeout=2).close()
        self.assertFalse(s.status()["listening"])
        s.mode("ok")
        self.assertEqual(prelogin(s.host, s.port)["version"], VERSION)

    def test_hang(self):
        s = self.start()
        s.mode("hang")
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.sendall(build_prelogin())
            c.settimeout(1.0)
            with self.assertRaises(socket.timeout):
                c.recv(1)
            self.assertEqual(s.status()["connections"], 1)
        s.wait_for(lambda st: st["connections"] == 0, timeout=2)

    def test_slow(self):
        s = self.start(slow_ms=5000)
        s.mode("slow", 400)
        t0 = time.monotonic()
        r = prelogin(s.host, s.port, timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        self.assertEqual(r["version"], VERSION)

    def test_garbage(self):
        s = self.start()
        s.mode("garbage")
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.sendall(build_prelogin())
            data = recv_all(c, 2)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)
        with self.assertRaises(ValueError):
            parse_prelogin_reply(data)
        s.mode("garbage", "truncated")
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.sendall(build_prelogin())
            data = recv_all(c, 2)
        self.assertEqual(data[:2], b"\x04\x01")
        self.assertGreater(struct.unpack(">H", data[2:4])[0], len(data))
        with self.assertRaises(ValueError):
            parse_prelogin_reply(data)

    def test_tls(self):
        s = self.start()
        s.mode("tls")
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.sendall(build_prelogin())
            data = recv_all(c, 2)
        self.assertEqual(data, TLS_ALERT_UNEXPECTED_MESSAGE)
        self.assertEqual(data[0], 0x15)
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.sendall(bytes([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 0]))
            data = recv_all(c, 2)
        self.assertEqual(data, TLS_ALERT_HANDSHAKE_FAILURE)

    def test_bad_input_is_closed(self):
        s = self.start()
        bad = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                        # not TDS
            b"\x12\x01\xff\xff\x00\x00\x00\x00" + b"\0" * 16,           # length > 4096
            b"\x12\x01\x00\x04\x00\x00\x00\x00",                        # length < 8
            b"\x12\x00\x00\x0e\x00\x00\x00\x00" + b"\x00\x00\x06\x00\x06\xff",  # no EOM
            b"\x12\x01\x00\x0e\x00\x00\x00\x00" + b"\x00\x00\x06\x00\x06\xff",  # data past end
            b"\x12\x01\x00\x0a\x00\x00\x00\x00" + b"\x00\x00",          # no terminator
            b"\x10\x01\x00\x09\x00\x00\x00\x00\x00",                    # LOGIN7 first
        ]
        for payload in bad:
            with socket.create_connection((s.host, s.port), timeout=2) as c:
                c.sendall(payload)
                self.assertEqual(recv_all(c, 2), b"", payload)
        self.assertEqual(prelogin(s.host, s.port)["version"], VERSION)

    def test_split_packet(self):
        s = self.start()
        packet = build_prelogin()
        with socket.create_connection((s.host, s.port), timeout=2) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(packet)):
                c.sendall(packet[i:i + 1])
                if i < 9:
                    time.sleep(0.01)
            self.assertEqual(parse_prelogin_reply(recv_packet(c, 2))["version"], VERSION)

    def test_many_connections(self):
        s = self.start()
        conns = []
        try:
            for _ in range(300):
                conns.append(socket.create_connection((s.host, s.port), timeout=5))
            for c in conns:
                c.sendall(build_prelogin())
            for c in conns:
                self.assertEqual(parse_prelogin_reply(recv_packet(c, 5))["version"], VERSION)
            self.assertEqual(s.status()["connections"], 300)
        finally:
            for c in conns:
                c.close()
        s.wait_for(lambda st: st["connections"] == 0, timeout=3)

    def test_crash(self):
        s = self.start(restart_delay_ms=200)
        parent, old = s.parent_pid, s.engine_pid
        t0 = time.monotonic()
        new = s.crash(timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertNotEqual(new, old)
        self.assertTrue(wait_gone(old))
        self.assertEqual(s.status()["parent"], parent)
        self.assertEqual(proc_stat(new)[1], parent)
        self.assertEqual(s.status()["restarts"], 1)
        self.assertIn("killed by signal 9", s.log())
        self.assertEqual(prelogin(s.host, s.port)["version"], VERSION)

    def test_zombie(self):
        s = self.start()
        old = s.engine_pid
        s.mode("zombie")
        st = s.wait_for(lambda st: st["engine_state"] == "zombie", timeout=3)
        self.assertEqual(st["engine"], old)
        self.assertEqual(proc_stat(old)[0], "Z")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((s.host, s.port), timeout=2).close()
        s.mode("ok")
        st = s.wait_for(lambda st: st["engine_state"] == "running", timeout=3)
        self.assertNotEqual(st["engine"], old)
        self.assertTrue(wait_gone(old))
        self.assertEqual(prelogin(s.host, s.port)["version"], VERSION)
        # and "reap" does the same
        old = st["engine"]
        s.mode("zombie")
        s.wait_for(lambda st: st["engine_state"] == "zombie", timeout=3)
        s.command("reap")
        st = s.wait_for(lambda st: st["engine_state"] == "running", timeout=3)
        self.assertEqual(st["mode"], "ok")
        self.assertTrue(wait_gone(old))

    def test_restart_policy(self):
        s = self.start(restart_delay_ms=100)
        s.command("stop-restarting")
        old = s.engine_pid
        s.crash(wait=False)
        s.wait_for(lambda st: st["engine_state"] == "down", timeout=3)
        time.sleep(0.4)
        self.assertEqual(s.status()["engine"], 0)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((s.host, s.port), timeout=2).close()
        s.command("start-restarting")
        st = s.wait_for(lambda st: st["engine_state"] == "running", timeout=3)
        self.assertNotEqual(st["engine"], old)

    def test_never_restart(self):
        s = self.start(restart_delay_ms=-1)
        self.assertFalse(s.status()["restarting"])
        s.crash(wait=False)
        s.wait_for(lambda st: st["engine_state"] == "down", timeout=3)

    def test_crash_loop(self):
        s = self.start(restart_delay_ms=50)
        old = s.engine_pid
        s.command("crash-loop 3 50")
        st = s.wait_for(lambda st: st["restarts"] == 3 and st["engine_state"] == "running"
                        and st["crash_loop_remaining"] == 0, timeout=5)
        self.assertNotEqual(st["engine"], old)
        self.assertEqual(s.log().count("killed by signal 9"), 3)

    def test_quit(self):
        s = self.start()
        parent, engine = s.parent_pid, s.engine_pid
        s.command("quit")
        self.assertTrue(wait_gone(engine))
        self.assertTrue(wait_gone(parent, zombie_ok=True))  # our child until stop()


class LifecycleTest(unittest.TestCase):
    def test_dies_with_its_launcher(self):
        """PR_SET_PDEATHSIG: kill -9 whoever started it and both processes go."""
        with tempfile.TemporaryDirectory() as d:
            launcher = subprocess.Popen(
                [sys.executable, "-c",
                 "import subprocess, sys, time\n"
                 "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)\n"
                 "sys.stdout.write(p.stdout.readline().decode()); sys.stdout.flush()\n"
                 "time.sleep(60)\n",
                 standin.find_binary(), "--listen", "127.0.0.1:0", "--control",
                 os.path.join(d, "c.sock"), "--foreground"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                line = launcher.stdout.readline().decode()
                fields = dict(f.split("=", 1) for f in line.split()[1:])
                parent, engine = int(fields["parent"]), int(fields["engine"])
            finally:
                launcher.kill()
                launcher.wait()
                launcher.stdout.close()
            self.assertTrue(wait_gone(parent, zombie_ok=True), "watchdog outlived its launcher")
            self.assertTrue(wait_gone(engine, zombie_ok=True), "engine outlived its watchdog")

    def test_detached_with_pidfile(self):
        with tempfile.TemporaryDirectory() as d:
            ctl, pidfile = os.path.join(d, "c.sock"), os.path.join(d, "pid")
            res = subprocess.run([standin.find_binary(), "--listen", "127.0.0.1:0",
                                  "--control", ctl, "--pidfile", pidfile],
                                 stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            parent = None
            try:
                self.assertEqual(res.returncode, 0, res.stderr)
                line = res.stdout.decode()
                self.assertRegex(line, r"^ready parent=\d+ engine=\d+ listen=127\.0\.0\.1:\d+\n$")
                fields = dict(f.split("=", 1) for f in line.split()[1:])
                parent = int(fields["parent"])
                with open(pidfile) as f:
                    self.assertEqual(int(f.read()), parent)
                port = int(fields["listen"].rsplit(":", 1)[1])
                self.assertEqual(prelogin("127.0.0.1", port)["version"], VERSION)
                with socket.socket(socket.AF_UNIX) as c:
                    c.settimeout(5)
                    c.connect(ctl)
                    c.sendall(b"quit\n")
                    self.assertEqual(c.recv(100), b"ok bye\n")
                self.assertTrue(wait_gone(parent, zombie_ok=True))
                self.assertFalse(os.path.exists(pidfile))
            finally:
                # Detached, it no longer dies with us: stop it whatever failed.
                if os.path.exists(ctl):
                    try:
                        with socket.socket(socket.AF_UNIX) as c:
                            c.settimeout(2)
                            c.connect(ctl)
                            c.sendall(b"quit\n")
                            c.recv(100)
                    except OSError:
                        pass
                if parent and proc_comm(parent) == "sqlservr":
                    os.kill(parent, signal.SIGTERM)
                if parent:
                    wait_gone(parent, zombie_ok=True)

    def test_usage_errors(self):
        binary = standin.find_binary()
        for argv in (["--listen", "nope"], ["--listen", "127.0.0.1:0"],
                     ["--control", "/tmp/x", "--mode", "zombie"],
                     ["--control", "/tmp/x", "--version", "1.2"],
                     ["--control", "/tmp/x", "--encryption", "maybe"]):
            res = subprocess.run([binary] + argv, capture_output=True, timeout=5)
            self.assertEqual(res.returncode, 2, argv)
        res = subprocess.run([binary, "--help"], capture_output=True, timeout=5)
        self.assertEqual(res.returncode, 0)
        self.assertIn(b"--listen HOST:PORT", res.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
