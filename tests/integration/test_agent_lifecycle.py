"""The agent as a systemd service sees it: sd_notify over a real datagram
socket (READY, STATUS, WATCHDOG, RELOADING, STOPPING), SIGHUP reloads that
keep a bad config out, and a clean SIGTERM shutdown."""

import os
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent import SLOW, Agent, free_port, yaml_config  # noqa: E402
from standin import StandIn  # noqa: E402

TDS = {"kind": "tds", "interval": "250ms", "timeout": "250ms", "jitter": 0, "rise": 1, "fall": 1}


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ew-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, prefix, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            for m in self.messages:
                if m.startswith(prefix) or ("\n" + prefix) in m:
                    return m
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        raise AssertionError(f"no {prefix!r} in {self.messages}")

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.standin = StandIn()
        self.standin.start()
        self.listen = f"127.0.0.1:{free_port()}"

    def tearDown(self):
        self.standin.stop()

    def config(self, names):
        return yaml_config([{"name": n, "port": self.standin.port, "probes": [TDS]} for n in names], self.listen)

    def test_sd_notify_protocol(self):
        ns = NotifySocket()
        try:
            a = Agent(self.config(["sql"]), listen=self.listen,
                      env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "200000"})
            # WATCHDOG_PID must name the agent; unset means "for us".
            a.start()
            self.assertIn("READY=1", ns.wait_for("READY=1", 5))
            ns.wait_for("STATUS=sql: healthy", 5)
            ns.wait_for("WATCHDOG=1", 2)
            self.standin.mode("hang")
            ns.wait_for("STATUS=sql: failed", 5)
            a.signal(signal.SIGHUP)
            m = ns.wait_for("RELOADING=1", 5)
            self.assertIn("MONOTONIC_USEC=", m)
            ns.messages.clear()
            ns.wait_for("READY=1", 5)
            a.stop()
            ns.wait_for("STOPPING=1", 1)
        finally:
            ns.close()

    def test_reload_good_and_bad(self):
        a = Agent(self.config(["one"]), listen=self.listen)
        a.start()
        a.wait_state("one", "healthy", 5)
        # A bad config is refused; the old one keeps running.
        with open(a.config_path, "w") as f:
            f.write("apiVersion: edgewarden.io/v1alpha1\nkind: AgentConfig\ntargets:\n  - name: one\n    prot: 1\n")
        a.signal(signal.SIGHUP)
        a.wait_for(lambda: a.metric("edgewarden_config_reloads_total", result="failure") == 1, 5, "reload failure")
        self.assertEqual(a.metric("edgewarden_config_last_reload_successful"), 0)
        self.assertEqual([t["name"] for t in a.status()["targets"]], ["one"])
        self.assertTrue(any("targets[0].prot" in l.get("msg", "") for l in a.log_lines()), a.log_text())
        # A good one replaces the target set, keeping the unchanged target's history.
        since = a.target("one")["since"]
        with open(a.config_path, "w") as f:
            f.write(self.config(["one", "two"]))
        a.signal(signal.SIGHUP)
        a.wait_for(lambda: [t["name"] for t in a.status()["targets"]] == ["one", "two"], 5, "two targets")
        a.wait_state("two", "healthy", 5)
        self.assertEqual(a.target("one")["since"], since)
        self.assertEqual(a.metric("edgewarden_config_reloads_total", result="success"), 1)
        self.assertEqual(a.metric("edgewarden_config_last_reload_successful"), 1)
        with open(a.config_path, "w") as f:
            f.write(self.config(["two"]))
        a.signal(signal.SIGHUP)
        a.wait_for(lambda: [t["name"] for t in a.status()["targets"]] == ["two"], 5, "one removed")
        self.assertIsNone(a.metric("edgewarden_target_state", target="one", state="healthy"))
        a.stop()

    def test_embedded_default_runs(self):
        # No --config: the embedded default (127.0.0.1:1433 + sqlservr) starts and serves.
        a = Agent(None, args=["--listen", self.listen, "--log-format", "json", "--node-name", "n1"], listen=self.listen)
        a.start()
        st = a.status()
        self.assertEqual(st["node"], "n1")
        self.assertEqual(len(st["targets"]), 1)
        self.assertEqual({p["kind"] for p in st["targets"][0]["probes"]}, {"tds", "process"})
        a.stop()

    def test_listen_in_use_fails_cleanly(self):
        # Start-up that fails half-way (the HTTP port is taken) exits 1 with a
        # line that says what to do, and closes what it opened (valgrind-clean).
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            listen = "127.0.0.1:%d" % busy.getsockname()[1]
            a = Agent(self.config(["sql"]), args=["--listen", listen], listen=listen)
            a.start(wait_ready=False)
            a.proc.wait(timeout=10 * SLOW)  # it exits by itself
            self.assertEqual(a.stop(expect_code=1), 1)
            self.assertIn("cannot serve HTTP on " + listen, a.log_text())

    def test_long_probe_name(self):
        # Any name the config accepts (a DNS label, up to 63 bytes) must run.
        name = "tds-" + "x" * 40
        cfg = self.config(["sql"]).replace("{kind: tds,", "{kind: tds, name: %s," % name)
        a = Agent(cfg, listen=self.listen)
        a.start()
        a.wait_state("sql", "healthy", 5)
        self.assertEqual(a.target("sql")["probes"][0]["name"], name)
        a.stop()

    def test_env_overrides(self):
        a = Agent(self.config(["sql"]), listen=self.listen, env={"NODE_NAME": "from-env"})
        # The file names a node; the environment wins over the file.
        a.start()
        self.assertEqual(a.status()["node"], "from-env")
        a.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
