"""The command line: probe tds / probe process against the stand-in in every
mode, check-config, version and --help, with the documented exit codes."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent import ROOT, SLOW, free_port, run_cli  # noqa: E402
from cgroup import Cgroup  # noqa: E402
from standin import StandIn  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "config")


class ProbeTds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.standin = StandIn()
        cls.standin.start()
        cls.addr = f"127.0.0.1:{cls.standin.port}"

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()

    def setUp(self):
        self.standin.mode("ok")

    def probe(self, *extra):
        p = run_cli("probe", "tds", self.addr, "--json", *extra)
        self.assertNotEqual(p.stdout, "", p.stderr)
        return p.returncode, json.loads(p.stdout)

    def test_ok(self):
        code, out = self.probe()
        self.assertEqual(code, 0)
        self.assertEqual(out["probe"], "tds")
        self.assertEqual(out["outcome"], "ok")
        self.assertEqual(out["server_version"], "16.0.4135.4")
        self.assertIn("encryption", out)
        self.assertGreater(out["latency_ms"], 0)

    def test_human_table(self):
        p = run_cli("probe", "tds", self.addr)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = dict(line.split(None, 1) for line in p.stdout.splitlines())
        self.assertEqual(rows["outcome"], "ok")
        self.assertEqual(rows["server"], "16.0.4135.4")

    def test_refused(self):
        self.standin.mode("refuse")
        code, out = self.probe()
        self.assertEqual((code, out["outcome"]), (1, "refused"))

    def test_closed_port_refused(self):
        p = run_cli("probe", "tds", f"127.0.0.1:{free_port()}", "--json")
        self.assertEqual((p.returncode, json.loads(p.stdout)["outcome"]), (1, "refused"))

    def test_hang_times_out(self):
        self.standin.mode("hang")
        t0 = time.monotonic()
        code, out = self.probe("--timeout-ms", "300")
        elapsed = time.monotonic() - t0
        self.assertEqual((code, out["outcome"]), (1, "timeout"))
        self.assertGreaterEqual(out["latency_ms"], 290)
        self.assertLess(elapsed, 5 * SLOW)

    def test_slow_within_timeout(self):
        self.standin.mode("slow", 200)
        code, out = self.probe("--timeout-ms", "3000")
        self.assertEqual((code, out["outcome"]), (0, "ok"))
        self.assertGreaterEqual(out["latency_ms"], 190)

    def test_garbage(self):
        self.standin.mode("garbage")
        code, out = self.probe()
        self.assertEqual((code, out["outcome"]), (1, "protocol_error"))

    def test_tls_required_is_ok(self):
        self.standin.mode("tls")
        code, out = self.probe()
        self.assertEqual((code, out["outcome"]), (0, "tls_required"))

    def test_usage_errors(self):
        self.assertEqual(run_cli("probe", "tds").returncode, 2)
        self.assertEqual(run_cli("probe", "tds", "nohostport:").returncode, 2)
        self.assertEqual(run_cli("probe", "tds", self.addr, "--timeout-ms", "x").returncode, 2)
        self.assertEqual(run_cli("probe", "udp", self.addr).returncode, 2)
        self.assertEqual(run_cli("probe", "tds", self.addr, "--bogus").returncode, 2)


class ProbeProcess(unittest.TestCase):
    def test_finds_the_engine_child(self):
        with StandIn() as s:
            cg = Cgroup()
            try:
                cg.add(s.parent_pid)
                cg.add(s.engine_pid)
                p = run_cli("probe", "process", "--cgroup", cg.fragment, "--json")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                out = json.loads(p.stdout)
                self.assertEqual(out["outcome"], "ok")
                self.assertEqual(out["pid"], s.engine_pid)  # the child, not the watchdog parent
            finally:
                s.stop()
                cg.remove()

    def test_absent(self):
        p = run_cli("probe", "process", "--name", "no-such-engine", "--json")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["outcome"], "absent")

    def test_usage(self):
        self.assertEqual(run_cli("probe", "process", "extra").returncode, 2)


class CheckConfig(unittest.TestCase):
    def test_valid_fixtures(self):
        files = sorted(f for f in os.listdir(FIXTURES) if f.startswith("valid"))
        self.assertTrue(files)
        for f in files:
            p = run_cli("check-config", os.path.join(FIXTURES, f))
            self.assertEqual(p.returncode, 0, f + p.stderr)
            self.assertIn(": ok (", p.stdout)

    def test_shipped_config(self):
        p = run_cli("check-config", os.path.join(ROOT, "packaging", "config.yaml"))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_invalid_fixtures_print_path_and_exit_2(self):
        files = sorted(f for f in os.listdir(FIXTURES) if f.startswith("invalid"))
        self.assertTrue(files)
        for f in files:
            path = os.path.join(FIXTURES, f)
            with open(path, "rb") as fh:
                first = fh.readline().decode("utf-8", "replace")
            p = run_cli("check-config", path)
            self.assertEqual(p.returncode, 2, f)
            if first.startswith("# expect: "):
                self.assertIn(first[len("# expect: "):].strip(), p.stderr, f)

    def test_missing_file(self):
        p = run_cli("check-config", "/nonexistent/config.yaml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/config.yaml", p.stderr)

    def test_bad_config_starts_nothing(self):
        port = free_port()
        path = os.path.join(FIXTURES, sorted(f for f in os.listdir(FIXTURES) if f.startswith("invalid"))[0])
        p = run_cli("run", "--config", path, "--listen", f"127.0.0.1:{port}", timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("invalid configuration", p.stdout + p.stderr)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nothing was listening on it


class Misc(unittest.TestCase):
    def test_version(self):
        p = run_cli("version")
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("edgewarden 0."))
        p = run_cli("version", "--json")
        self.assertIn("version", json.loads(p.stdout))

    def test_help_everywhere(self):
        for args in (["--help"], ["run", "--help"], ["probe", "--help"], ["probe", "tds", "--help"],
                     ["check-config", "--help"], ["status", "--help"], ["version", "--help"]):
            p = run_cli(*args)
            self.assertEqual(p.returncode, 0, args)
            self.assertIn("Usage:", p.stdout, args)

    def test_unknown_command(self):
        p = run_cli("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)

    def test_status_without_agent(self):
        p = run_cli("status", "--url", f"http://127.0.0.1:{free_port()}/status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot fetch", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
