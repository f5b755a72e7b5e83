"""Launch and observe the real edgewarden binary in integration tests.

The agent runs as a child process with its JSON log captured to a file; the
tests read its HTTP endpoints (/status, /metrics, /healthz, /readyz) and its
log lines. EDGEWARDEN_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") is
put in front of the binary so the same tests run under valgrind; stop()
asserts the exit code, so a leak or memory error fails the test that caused it.
"""

import atexit
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("EDGEWARDEN", os.path.join(ROOT, "build", "edgewarden"))
WRAPPER = shlex.split(os.environ.get("EDGEWARDEN_WRAPPER", ""))
# Under valgrind everything is ~20x slower; tests scale their waits by this.
SLOW = 10.0 if WRAPPER else 1.0

_live = []


def _cleanup():
    for a in list(_live):
        a.kill()


atexit.register(_cleanup)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, timeout=30, env=None, wrap=True):
    """Run an edgewarden command; returns CompletedProcess (text)."""
    cmd = (WRAPPER if wrap else []) + [BINARY] + list(args)
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SLOW, env=e, stdin=subprocess.DEVNULL)


def yaml_config(targets, listen, extra=""):
    """A config file text for the given targets (list of dicts)."""
    lines = [
        "apiVersion: edgewarden.io/v1alpha1",
        "kind: AgentConfig",
        "nodeName: itest-node",
        "log: {level: debug, format: json}",
        f'server: {{listen: "{listen}"}}',
    ]
    if extra:
        lines.append(extra.rstrip())
    lines.append("targets:")
    for t in targets:
        lines.append(f"  - name: {t['name']}")
        lines.append(f"    address: {t.get('address', '127.0.0.1')}")
        lines.append(f"    port: {t['port']}")
        proc = t.get("process")
        if proc:
            lines.append("    process:")
            for k, v in proc.items():
                lines.append(f'      {k}: "{v}"')
        lines.append("    probes:")
        for p in t["probes"]:
            lines.append("      - {" + ", ".join(f"{k}: {v}" for k, v in p.items()) + "}")
    return "\n".join(lines) + "\n"


class Agent:
    def __init__(self, config_text=None, args=(), env=None, listen=None):
        self.dir = tempfile.mkdtemp(prefix="ew-itest-")
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.config_path = None
        if config_text is not None:
            self.config_path = os.path.join(self.dir, "config.yaml")
            with open(self.config_path, "w") as f:
                f.write(config_text)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.update(env or {})
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None

    # -- lifecycle ---------------------------------------------------------
    def start(self, wait_ready=True):
        cmd = WRAPPER + [BINARY, "run"]
        if self.config_path:
            cmd += ["--config", self.config_path]
        cmd += self.args
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True)
        _live.append(self)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited early with {self.proc.returncode}:\n{self.log_text()}")
            try:
                code, _ = self.get("/readyz")
                if code == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"agent not ready within {timeout}s:\n{self.log_text()}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, expect_code=0, timeout=20):
        """SIGTERM, wait, and assert a clean exit (valgrind's 99 fails here)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"agent did not stop on SIGTERM:\n{self.log_text()}")
        self._log.close()
        if self in _live:
            _live.remove(self)
        if expect_code is not None and code != expect_code:
            raise AssertionError(f"agent exited with {code}, expected {expect_code}:\n{self.log_text()}")
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop()
        else:
            self.kill()

    # -- observation ---------------------------------------------------------
    def get(self, path, timeout=5):
        req = urllib.request.Request(f"http://{self.listen}{path}")
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def status(self):
        code, body = self.get("/status")
        assert code == 200, (code, body)
        return json.loads(body)

    def target(self, name):
        for t in self.status()["targets"]:
            if t["name"] == name:
                return t
        raise AssertionError(f"no target {name} in /status")

    def metrics(self):
        code, body = self.get("/metrics")
        assert code == 200, (code, body)
        return body

    def metric(self, name, **labels):
        """Value of one sample, or None."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            if "{" in key:
                n, _, rest = key.partition("{")
                got = ",".join(sorted(rest.rstrip("}").split(",")))
            else:
                n, got = key, ""
            if n == name and got == want:
                return float(value)
        return None

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # valgrind's own lines
        return out

    def wait_for(self, predicate, timeout, what="condition", interval=0.01):
        """Poll predicate() until true; returns seconds waited."""
        start = time.monotonic()
        deadline = start + timeout * SLOW
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return time.monotonic() - start
            except (OSError, AssertionError, KeyError) as e:
                last = e
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout * SLOW:.1f}s waiting for {what} (last: {last!r})\n"
                             f"status: {self._safe_status()}\nlog tail:\n{self.log_text()[-4000:]}")

    def wait_state(self, target, state, timeout):
        return self.wait_for(lambda: self.target(target)["state"] == state, timeout, f"{target} to be {state}")

    def _safe_status(self):
        try:
            return json.dumps(self.status())
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return repr(e)
