"""The agent's main job against the SQL Server stand-in: every fault mode is
seen, classified and bounded in time, and the HTTP endpoints tell the truth."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent import SLOW, Agent, free_port, yaml_config  # noqa: E402
from cgroup import Cgroup  # noqa: E402
from standin import StandIn  # noqa: E402

TDS = {"kind": "tds", "interval": "250ms", "timeout": "250ms", "jitter": 0, "rise": 1, "fall": 2}
# A long interval: an exit seen quickly can only have come from the pidfd.
PROCESS = {"kind": "process", "interval": "10s", "timeout": "1s", "jitter": 0, "rise": 1, "fall": 1}


class AgentRun(unittest.TestCase):
    def setUp(self):
        self.standin = StandIn(restart_delay_ms=300)
        self.standin.start()
        self.cg = Cgroup()
        self.cg.add(self.standin.parent_pid)
        self.cg.add(self.standin.engine_pid)
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.kill()  # no-op after a clean stop()
        self.standin.stop()
        self.cg.remove()

    def start_agent(self, extra="health: {startupGrace: 0s, crashLoop: {restarts: 3, window: 60s}}\n"):
        listen = f"127.0.0.1:{free_port()}"
        target = {"name": "sql", "port": self.standin.port, "process": {"comm": "sqlservr", "cgroup": self.cg.fragment},
                  "probes": [TDS, PROCESS]}
        self.agent = Agent(yaml_config([target], listen=listen, extra=extra), listen=listen)
        self.agent.start()
        self.agent.wait_state("sql", "healthy", 5)
        return self.agent

    def test_healthy_status_shape(self):
        a = self.start_agent()
        st = a.status()
        self.assertEqual(st["node"], "itest-node")
        self.assertTrue(st["ready"])
        t = st["targets"][0]
        for key in ("name", "state", "reason", "since", "probes"):
            self.assertIn(key, t)
        self.assertEqual(t["reason"], "ProbesPassing")
        probes = {p["name"]: p for p in t["probes"]}
        self.assertEqual(probes["tds"]["outcome"], "ok")
        self.assertEqual(probes["tds"]["server_version"], "16.0.4135.4")
        self.assertGreater(probes["tds"]["latency_ms"], 0)
        self.assertEqual(probes["process"]["outcome"], "ok")
        self.assertEqual(probes["process"]["pid"], self.standin.engine_pid)
        self.assertEqual(a.get("/healthz")[0], 200)
        self.assertEqual(a.get("/readyz")[0], 200)
        self.assertEqual(a.get("/nope")[0], 404)
        # The fencing roll call's question (docs/node-loss.md): without
        # Kubernetes reporting the agent never claims to reach an API server.
        status, body = a.get("/peer")
        self.assertEqual(status, 200)
        peer = json.loads(body)
        self.assertEqual((peer["apiReachable"], peer["leader"], peer["fenced"]), (False, False, False))
        self.assertTrue(peer["node"])
        a.stop()

    def test_hang_is_a_failure_within_bound(self):
        a = self.start_agent()
        self.standin.mode("hang")
        t0 = time.monotonic()
        a.wait_state("sql", "failed", 5)
        elapsed = time.monotonic() - t0
        # fall x interval + timeout, plus slack for a loaded machine.
        bound = 2 * 0.25 + 0.25
        print(f"accept-and-hang -> failed in {elapsed * 1000:.0f} ms (bound {bound * 1000:.0f} ms + slack)")
        self.assertLess(elapsed, (bound + 1.0) * SLOW)
        self.assertGreaterEqual(elapsed, 0.25)  # at least one full timeout
        self.assertEqual(a.target("sql")["reason"], "ListenerHung")
        self.standin.mode("ok")
        a.wait_state("sql", "healthy", 5)
        a.stop()

    def test_refused_garbage_and_tls(self):
        a = self.start_agent()
        for mode, reason in (("refuse", "ListenerRefused"), ("garbage", "ProtocolError")):
            self.standin.mode(mode)
            a.wait_state("sql", "failed", 5)
            self.assertEqual(a.target("sql")["reason"], reason, mode)
            self.standin.mode("ok")
            a.wait_state("sql", "healthy", 5)
        # TDS 8 strict is alive: tls_required is not a failure.
        self.standin.mode("tls")
        a.wait_for(lambda: a.target("sql")["probes"][0]["outcome"] == "tls_required", 5, "tls_required")
        time.sleep(0.6)
        self.assertEqual(a.target("sql")["state"], "healthy")
        a.stop()

    def test_engine_exit_seen_before_next_interval(self):
        a = self.start_agent()
        old = self.standin.engine_pid
        self.standin.crash()
        t0 = time.monotonic()
        a.wait_state("sql", "failed", 5)
        elapsed = time.monotonic() - t0
        print(f"engine exit -> failed seen by the test in {elapsed * 1000:.1f} ms (process interval 10 s)")
        self.assertLess(elapsed, 1.0 * SLOW)
        # The failure is the exit itself (the pidfd), not a later probe: the
        # first transition to failed names it. (The reason may move on to
        # ListenerRefused before /status is read, on a slow machine.)
        failed = [l for l in a.log_lines() if "-> failed" in l.get("msg", "")]
        self.assertTrue(failed and "(EngineExited)" in failed[0]["msg"], failed[:1])
        a.wait_state("sql", "healthy", 10)
        self.assertNotEqual(self.standin.engine_pid, old)
        self.assertEqual(a.metric("edgewarden_process_restarts_total", target="sql"), 1)
        self.assertTrue(any("engine restarted" in l.get("msg", "") for l in a.log_lines()))
        a.stop()

    def test_zombie_engine(self):
        a = self.start_agent()
        self.standin.mode("zombie")
        # The exit is reported at once (absent); the check pulled forward
        # 250 ms later finds it unreaped and names it.
        a.wait_state("sql", "failed", 5)
        a.wait_for(lambda: a.target("sql")["reason"] == "EngineZombie", 2, "EngineZombie")
        self.assertEqual(a.target("sql")["probes"][1]["outcome"], "zombie")
        a.stop()

    def test_crash_loop(self):
        a = self.start_agent()
        for i in range(3):
            old = self.standin.engine_pid
            self.standin.crash()
            a.wait_for(lambda: self.standin.engine_pid not in (0, old), 10, "engine restart")
            # Crash the next engine only once the agent has seen it (a real
            # engine takes seconds to come back, the stand-in 300 ms).
            a.wait_for(lambda: a.target("sql")["probes"][1].get("pid") == self.standin.engine_pid, 10, "agent sees engine")
        a.wait_for(lambda: a.target("sql")["reason"] == "CrashLoop", 10, "CrashLoop")
        self.assertEqual(a.target("sql")["state"], "failed")
        self.assertEqual(a.metric("edgewarden_process_restarts_total", target="sql"), 3)
        # The crash loop is announced even when it starts while the target is
        # already failed (a new reason, not a new state).
        a.wait_for(lambda: any(l.get("reason") == "CrashLoop" for l in a.log_lines()), 2, "CrashLoop logged")
        a.stop()

    def test_metrics_pass_promtool(self):
        a = self.start_agent()
        self.standin.mode("hang")
        a.wait_state("sql", "failed", 5)
        body = a.metrics()
        for name in ("edgewarden_build_info", "edgewarden_probe_success", "edgewarden_probe_duration_seconds_bucket",
                     "edgewarden_target_state", "edgewarden_target_transitions_total"):
            self.assertIn(name, body)
        # Families whose series appear with their first sample (a restart, a
        # 1 s loop tick) are always declared.
        for family in ("edgewarden_process_restarts_total counter", "edgewarden_loop_lag_seconds histogram"):
            self.assertIn("# TYPE " + family, body)
        self.assertEqual(a.metric("edgewarden_target_state", target="sql", state="failed"), 1)
        self.assertEqual(a.metric("edgewarden_target_state", target="sql", state="healthy"), 0)
        p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        a.stop()

    def test_metrics_reference_matches(self):
        a = self.start_agent()
        served = {line.split()[2] for line in a.metrics().splitlines() if line.startswith("# HELP ")}
        with open(os.path.join(os.environ.get("SOURCE_ROOT", "."), "docs", "metrics.md")) as f:
            # The first table: what every agent serves. The Kubernetes
            # reporting table is checked by the e2e suite (TestAgentStaticLadder).
            text = f.read().split("## Kubernetes reporting metrics")[0]
            documented = set(re.findall(r"^\| `(edgewarden_[a-z_]+)`", text, re.M))
        self.assertEqual(served, documented, "docs/metrics.md and /metrics disagree")
        a.stop()

    def test_hostile_http_keeps_serving(self):
        a = self.start_agent()
        host, port = a.listen.rsplit(":", 1)

        def raw(data):
            with socket.create_connection((host, int(port)), timeout=5 * SLOW) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                out = b""
                while chunk := s.recv(4096):
                    out += chunk
                return out

        ok = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(ok.startswith(b"HTTP/1.1 200"), ok)
        self.assertRegex(ok, rb"\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n")
        self.assertTrue(raw(b"BLAH\r\n\r\n").startswith(b"HTTP/1.1 400"))
        self.assertTrue(raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431"))
        self.assertTrue(raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 405"))
        self.assertEqual(a.get("/healthz")[0], 200)
        a.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
