"""Launch and drive the SQL Server stand-in (tests/fixtures/standin.c) from tests.

StandIn starts `sqlservr --foreground` on a port the engine picks itself
(`--listen 127.0.0.1:0`, reported in its ready line), talks to its control
socket, and always stops it: use it as a context manager; an atexit hook and
the stand-in's own PR_SET_PDEATHSIG are the safety nets behind that.

The module also holds a minimal MS-TDS PRELOGIN client (build_prelogin,
parse_prelogin_reply, prelogin) so that tests can make a real exchange without
any other tool. Standard library only.
"""

import atexit
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

__all__ = [
    "StandIn",
    "StandInError",
    "find_binary",
    "build_prelogin",
    "parse_prelogin_reply",
    "prelogin",
    "recv_packet",
    "ENCRYPT_OFF",
    "ENCRYPT_ON",
    "ENCRYPT_NOT_SUP",
    "ENCRYPT_REQ",
]

ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0, 1, 2, 3

TDS_TYPE_REPLY = 0x04
TDS_TYPE_PRELOGIN = 0x12
TDS_STATUS_EOM = 0x01

PL_VERSION, PL_ENCRYPTION, PL_INSTOPT, PL_THREADID, PL_MARS = 0, 1, 2, 3, 4
PL_TERMINATOR = 0xFF

_live = set()


@atexit.register
def _stop_all():
    for s in list(_live):
        s.stop()


class StandInError(RuntimeError):
    pass


def find_binary():
    """$STANDIN, else build*/tests/fixtures/sqlservr under $SOURCE_ROOT or the repo."""
    path = os.environ.get("STANDIN")
    if path:
        return path
    root = os.environ.get("SOURCE_ROOT") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for build in ("build", "build-standin"):
        cand = os.path.join(root, build, "tests", "fixtures", "sqlservr")
        if os.access(cand, os.X_OK):
            return cand
    raise StandInError("sqlservr stand-in not found: set STANDIN")


class StandIn:
    """One stand-in: a watchdog and its engine, both named sqlservr."""

    def __init__(self, listen="127.0.0.1:0", mode=None, version=None, encryption=None,
                 restart_delay_ms=None, slow_ms=None, binary=None, extra_args=()):
        self.binary = binary or find_binary()
        self.listen = listen
        self.args = []
        for flag, value in (("--mode", mode), ("--version", version),
                            ("--encryption", encryption),
                            ("--restart-delay-ms", restart_delay_ms),
                            ("--slow-ms", slow_ms)):
            if value is not None:
                self.args += [flag, str(value)]
        self.args += list(extra_args)
        self.proc = None
        self.tmpdir = None
        self.host = None
        self.port = None
        self._parent_pid = None
        self._first_engine_pid = None

    # -- lifecycle -------------------------------------------------------

    def start(self, timeout=10.0):
        if self.proc is not None:
            raise StandInError("already started")
        self.tmpdir = tempfile.mkdtemp(prefix="standin-")
        self.control_path = os.path.join(self.tmpdir, "control.sock")
        self.log_path = os.path.join(self.tmpdir, "sqlservr.log")
        argv = [self.binary, "--listen", self.listen, "--control", self.control_path,
                "--foreground"] + self.args
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log)
        _live.add(self)
        try:
            line = self._read_ready_line(timeout)
        except BaseException:
            self.stop()
            raise
        fields = dict(f.split("=", 1) for f in line.split()[1:])
        self._parent_pid = int(fields["parent"])
        self._first_engine_pid = int(fields["engine"])
        host, _, port = fields["listen"].rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        return self

    def _read_ready_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StandInError("no ready line within %.1f s; log:\n%s" % (timeout, self.log()))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(timeout=5)
                raise StandInError("sqlservr exited with %s before ready; log:\n%s"
                                   % (self.proc.returncode, self.log()))
            buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith("ready "):
            raise StandInError("unexpected first line %r" % line)
        return line

    def stop(self, timeout=5.0):
        """Terminate the watchdog (it stops the engine), wait, clean up. Idempotent."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        _live.discard(self)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The watchdog stops its engine on SIGTERM; if it was SIGKILLed instead,
        # the engine's PR_SET_PDEATHSIG takes it down.
        if proc.stdout is not None:
            proc.stdout.close()
        self.returncode = proc.returncode
        if self.tmpdir:
            self._log_text = self.log()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self):
        """The stand-in's stderr so far (kept after stop)."""
        if self.tmpdir is None:
            return getattr(self, "_log_text", "")
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- control ---------------------------------------------------------

    def command(self, line, timeout=5.0):
        """Send one control line, return the reply line; raise on 'error ...'."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.control_path)
            s.sendall(line.encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        reply = buf.split(b"\n", 1)[0].decode()
        if not reply.startswith("ok") and not reply.startswith("{"):
            raise StandInError("%s -> %s" % (line, reply or "(no reply)"))
        return reply

    def mode(self, name, arg=None):
        return self.command("mode %s%s" % (name, "" if arg is None else " %s" % arg))

    def status(self):
        return json.loads(self.command("status"))

    def crash(self, wait=True, timeout=5.0):
        """Crash the engine (SIGKILL on itself); with wait, return the new engine's pid
        once it listens again (needs the restart policy on)."""
        old = self.engine_pid
        self.command("crash")
        if not wait:
            return old
        return self.wait_for(lambda st: st["engine"] not in (0, old)
                             and st["engine_state"] == "running", timeout)["engine"]

    def wait_for(self, predicate, timeout=5.0, interval=0.02):
        """Poll status() until predicate(status) holds; return that status."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if predicate(st):
                return st
            if time.monotonic() >= deadline:
                raise StandInError("condition not met within %.1f s; last status %s" % (timeout, st))
            time.sleep(interval)

    @property
    def parent_pid(self):
        return self._parent_pid

    @property
    def engine_pid(self):
        """The current engine's pid (a zombie's too), 0 when there is none."""
        return self.status()["engine"]

    @property
    def address(self):
        return "%s:%d" % (self.host if ":" not in self.host else "[%s]" % self.host, self.port)


# -- a minimal PRELOGIN client ------------------------------------------------

def build_prelogin(encryption=ENCRYPT_OFF, version=(9, 0, 0, 0), instance="MSSQLServer",
                   thread_id=None, mars=0):
    """A client PRELOGIN packet as drivers send it: VERSION, ENCRYPTION, INSTOPT,
    THREADID, MARS, terminator."""
    major, minor, build, sub = version
    inst = instance.encode("ascii") + b"\0"
    options = [
        (PL_VERSION, struct.pack(">BBH", major, minor, build) + struct.pack("<H", sub)),
        (PL_ENCRYPTION, bytes([encryption])),
        (PL_INSTOPT, inst),
        (PL_THREADID, struct.pack(">I", os.getpid() if thread_id is None else thread_id)),
        (PL_MARS, bytes([mars])),
    ]
    table_len = 5 * len(options) + 1
    table, data = b"", b""
    for token, value in options:
        table += struct.pack(">BHH", token, table_len + len(data), len(value))
        data += value
    payload = table + bytes([PL_TERMINATOR]) + data
    header = struct.pack(">BBHHBB", TDS_TYPE_PRELOGIN, TDS_STATUS_EOM, 8 + len(payload), 0, 0, 0)
    return header + payload


def parse_prelogin_reply(packet):
    """Decode a server PRELOGIN reply; raise ValueError if it is not one.

    Returns {"version": "16.0.4135.4", "encryption": int, "options": [(token, bytes), ...],
    "header": (type, status, length, spid, packet_id, window)}.
    """
    if len(packet) < 8:
        raise ValueError("short header: %d bytes" % len(packet))
    header = struct.unpack(">BBHHBB", packet[:8])
    ptype, status, length = header[:3]
    if ptype != TDS_TYPE_REPLY:
        raise ValueError("packet type 0x%02x, not 0x04" % ptype)
    if not status & TDS_STATUS_EOM:
        raise ValueError("status 0x%02x without EOM" % status)
    if length < 8 or length > len(packet):
        raise ValueError("header length %d, have %d bytes" % (length, len(packet)))
    payload = packet[8:length]
    options, i = [], 0
    while True:
        if i >= len(payload):
            raise ValueError("option table without terminator")
        if payload[i] == PL_TERMINATOR:
            break
        if i + 5 > len(payload):
            raise ValueError("truncated option table")
        token, off, olen = struct.unpack(">BHH", payload[i:i + 5])
        if off + olen > len(payload):
            raise ValueError("option 0x%02x data past the end" % token)
        options.append((token, payload[off:off + olen]))
        i += 5
    opts = dict(options)
    if not options or options[0][0] != PL_VERSION or len(opts[PL_VERSION]) != 6:
        raise ValueError("VERSION missing, not first or not 6 bytes")
    # Build is big-endian, sub-build little-endian: so SqlClient writes them and
    # so Wireshark reads them.
    major, minor, build = struct.unpack(">BBH", opts[PL_VERSION][:4])
    sub, = struct.unpack("<H", opts[PL_VERSION][4:])
    enc = opts.get(PL_ENCRYPTION)
    return {
        "version": "%d.%d.%d.%d" % (major, minor, build, sub),
        "encryption": enc[0] if enc and len(enc) == 1 else None,
        "options": options,
        "header": header,
    }


def recv_packet(sock, timeout):
    """Read one TDS packet (header length bounded) or whatever arrives before EOF or
    timeout; returns the bytes read (possibly short or empty)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    buf = b""
    want = 8
    while len(buf) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        if len(buf) >= 8 and want == 8 and buf[0] == TDS_TYPE_REPLY:
            want = max(8, struct.unpack(">H", buf[2:4])[0])
    return buf


def prelogin(host, port, timeout=5.0, encryption=ENCRYPT_OFF):
    """One PRELOGIN round trip; returns parse_prelogin_reply()'s dict."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(build_prelogin(encryption=encryption))
        return parse_prelogin_reply(recv_packet(s, timeout))
