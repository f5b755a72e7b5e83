#!/usr/bin/env python3
"""Benchmarks of the agent's Kubernetes reporting against a real local API
server (scripts/localcluster). Prints figures; asserts nothing.

  bench/kube.py latency [--trials 100]   policy decision -> taint acknowledged, and failure
                                         seen -> taint acknowledged with the failover
                                         budget's round trips: p50, p99, max
  bench/kube.py steady  [--seconds 60]   API requests per node per minute with healthy SQL
  bench/kube.py scale   [--agents 200] [--seconds 60]
                                         N agents against one API server: agent CPU,
                                         the API server's request rate and CPU
  bench/kube.py all                      the three, on one cluster

latency: the agent logs, for every write, the time from the policy's decision
(taken in the same loop turn as the probe result that showed the failure) to
the API server's acknowledgement, measured on the agent's monotonic clock;
the bench reads those lines. Policy: relocateAfter 0, so a failure taints at
once; the engine (the SQL Server stand-in) flips between refusing and serving.

The cluster is started here (scripts/localcluster up, cached build) and torn
down at the end unless --kubeconfig names a running one. Build first:
scripts/build and scripts/e2e-build.
"""

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("STANDIN", os.path.join(ROOT, "build", "tests", "fixtures", "sqlservr"))
from standin import StandIn  # noqa: E402

AGENT = os.environ.get("EDGEWARDEN", os.path.join(ROOT, "build", "edgewarden"))
NS = "edgewarden"


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Cluster:
    """A local control plane: ours (started here) or an existing one."""

    def __init__(self, kubeconfig=None, nodes=1):
        self.dir = None
        if kubeconfig is None:
            self.dir = tempfile.mkdtemp(prefix="ew-bench-kube-")
            out = subprocess.run([os.path.join(ROOT, "scripts", "localcluster"), "up", "--dir", self.dir,
                                  "--nodes", str(nodes)], stdout=subprocess.PIPE, text=True, check=True)
            kubeconfig = out.stdout.strip().splitlines()[-1]
        self.kubeconfig = kubeconfig
        text = open(kubeconfig).read()
        self.server = re.search(r"server:\s*(\S+)", text).group(1)
        ca = re.search(r"certificate-authority:\s*(\S+)", text).group(1)
        cert = re.search(r"client-certificate:\s*(\S+)", text).group(1)
        key = re.search(r"client-key:\s*(\S+)", text).group(1)
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        cdir = os.path.dirname(kubeconfig)
        agent_kc = os.path.join(cdir, "agent.kubeconfig")
        self.agent_kubeconfig = agent_kc if os.path.exists(agent_kc) else kubeconfig

    def request(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw[:1] == b"{" else raw.decode()

    def ensure_namespace(self, name):
        try:
            self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": name}})
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise

    def create_node(self, name):
        self.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                "metadata": {"name": name, "labels": {"bench.edgewarden.io": "true"}}})

    def delete_node(self, name):
        try:
            self.request("DELETE", "/api/v1/nodes/" + name)
        except urllib.error.HTTPError:
            pass

    def apiserver_requests(self, resource=None):
        """Sum of apiserver_request_total, every verb; only resource's when given."""
        text = self.request("GET", "/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith("apiserver_request_total{"):
                if resource and f'resource="{resource}"' not in line:
                    continue
                total += float(line.rsplit(" ", 1)[1])
        return total

    def apiserver_pid(self):
        port = self.server.rsplit(":", 1)[1]
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"kube-apiserver") and port.encode() in argv:
                return int(pid)
        return None

    def down(self):
        if self.dir:
            subprocess.run([os.path.join(ROOT, "scripts", "localcluster"), "down", "--dir", self.dir],
                           stdout=subprocess.DEVNULL)
            shutil.rmtree(self.dir, ignore_errors=True)


def agent_config(node, target, kubeconfig, listen, interval="100ms", timeout="100ms",
                 relocate="0s", quarantine="1h", renew="10s", duration="40s"):
    host, port = target.rsplit(":", 1)
    return f"""apiVersion: edgewarden.io/v1alpha1
kind: AgentConfig
nodeName: {node}
log: {{level: {os.environ.get("BENCH_LOG_LEVEL", "info")}, format: json}}
server: {{listen: "{listen}"}}
health: {{startupGrace: 1s}}
targets:
  - name: sql
    address: {host}
    port: {port}
    probes:
      - {{kind: tds, interval: {interval}, timeout: {timeout}, jitter: 10ms, rise: 1, fall: 1}}
policy: {{relocateAfter: {relocate}, quarantine: {quarantine}, eventDedupWindow: 1h}}
kubernetes:
  enabled: true
  kubeconfig: {kubeconfig}
  namespace: {NS}
  lease: {{duration: {duration}, renewInterval: {renew}}}
"""


class AgentProc:
    def __init__(self, config_text, workdir, listen=True):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.cfg = os.path.join(workdir, "config.yaml")
        self.log = os.path.join(workdir, "agent.log")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.proc = subprocess.Popen([AGENT, "run", "--config", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_ticks(self):
        try:
            f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])
        except (OSError, IndexError):
            return 0


def proc_ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, TypeError):
        return 0


ACK = re.compile(r"^taint edgewarden.io/sqledge-unhealthy (\S+) acknowledged by the API server ([0-9.]+) ms")


def acks(log_path, effect):
    out = []
    with open(log_path) as f:
        for line in f:
            try:
                msg = json.loads(line).get("msg", "")
            except ValueError:
                continue
            m = ACK.match(msg)
            if m and m.group(1) == effect:
                out.append(float(m.group(2)))
    return out


def failure_to_noexecute(log_path):
    """Per failure: from the agent's own log line of the health transition to
    failed, to the acknowledgement of its NoExecute taint (both timestamps of
    the agent's clock), so the failover budget's round trips (the slot Lease's
    GET and PUT before the taint) are counted too. In ms."""
    out, failed_at = [], None
    with open(log_path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            msg = rec.get("msg", "")
            ts = datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            if rec.get("state") == "failed" and " -> failed (" in msg:
                failed_at = ts
            m = ACK.match(msg)
            if m and m.group(1) == "NoExecute" and failed_at is not None:
                out.append((ts - failed_at).total_seconds() * 1000.0)
                failed_at = None
    return out


def metrics_text(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def kube_requests(port):
    out = {}
    for line in metrics_text(port).splitlines():
        if line.startswith("edgewarden_kube_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = f'{labels["verb"]} {labels["resource"]}'
            out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def wait_for(cond, timeout, what, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    if log:
        with open(log) as f:
            lines = [l for l in f if '"debug"' not in l]
        sys.stderr.write("".join(lines[-30:]))
        if os.environ.get("BENCH_KEEP_LOG"):
            import shutil as _sh
            _sh.copy(log, "/tmp/bench-agent.log")
    raise SystemExit(f"timed out waiting for {what}")


def bench_latency(cl, trials, work):
    node = f"bench-lat-{random.randrange(10**6):06d}"
    cl.create_node(node)
    port = free_port()
    with StandIn() as s:
        a = AgentProc(agent_config(node, f"{s.host}:{s.port}", cl.agent_kubeconfig, f"127.0.0.1:{port}"),
                      os.path.join(work, "latency"))
        try:
            wait_for(lambda: _readyz(port), 30, "the agent to list its node")
            time.sleep(1.5)
            for i in range(trials):
                # Each cycle writes about 8 requests; a pause lets the agent's
                # token bucket (qps 20) refill, so the figure is a failure's
                # latency, not the rate limiter's.
                time.sleep(1.0)
                n = len(acks(a.log, "NoExecute"))
                s.command("mode refuse")
                wait_for(lambda: len(acks(a.log, "NoExecute")) > n, 20, f"NoExecute ack #{i + 1}", a.log)
                m = len(acks(a.log, "NoSchedule"))
                s.command("mode ok")
                wait_for(lambda: len(acks(a.log, "NoSchedule")) > m, 20, f"NoSchedule ack #{i + 1}", a.log)
            lat = acks(a.log, "NoExecute")
            whole = failure_to_noexecute(a.log)
        finally:
            a.stop()
            cl.delete_node(node)
    print(f"policy decision -> taint NoExecute acknowledged by the local API server, {len(lat)} trials:")
    print(f"  p50 {statistics.median(lat):.1f} ms   p99 {pct(lat, 99):.1f} ms   max {max(lat):.1f} ms"
          f"   (goal: p99 <= 50 ms)")
    print(f"failure seen -> taint NoExecute acknowledged, failover budget slot (GET + PUT) included, "
          f"{len(whole)} trials:")
    print(f"  p50 {statistics.median(whole):.1f} ms   p99 {pct(whole, 99):.1f} ms   max {max(whole):.1f} ms")
    return lat


def _readyz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def bench_steady(cl, seconds, work):
    node = f"bench-steady-{random.randrange(10**6):06d}"
    cl.create_node(node)
    port = free_port()
    with StandIn() as s:
        a = AgentProc(agent_config(node, f"{s.host}:{s.port}", cl.agent_kubeconfig, f"127.0.0.1:{port}",
                                   interval="2s", timeout="1s"), os.path.join(work, "steady"))
        try:
            wait_for(lambda: _readyz(port), 30, "the agent to be ready")
            time.sleep(5)
            before = kube_requests(port)
            time.sleep(seconds)
            after = kube_requests(port)
        finally:
            a.stop()
            cl.delete_node(node)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    total = sum(delta.values())
    per_min = total * 60.0 / seconds
    print(f"steady state, healthy SQL, {seconds} s, lease renewInterval 10s:")
    print(f"  {per_min:.1f} API requests per node per minute: " +
          ", ".join(f"{k} {v * 60.0 / seconds:.1f}" for k, v in sorted(delta.items()) if v))
    return per_min


def bench_scale(cl, n_agents, seconds, work):
    hz = os.sysconf("SC_CLK_TCK")
    nodes = [f"bench-scale-{i:04d}" for i in range(n_agents)]
    print(f"scale: creating {n_agents} nodes")
    for nd in nodes:
        cl.create_node(nd)
    api_pid = cl.apiserver_pid()
    agents = []
    with StandIn() as s:
        try:
            time.sleep(20)  # the node lifecycle controller takes the new nodes in
            r0, l0, t0, c0 = cl.apiserver_requests(), cl.apiserver_requests("leases"), time.time(), proc_ticks(api_pid)
            time.sleep(20)
            base_rate = (cl.apiserver_requests() - r0) / (time.time() - t0)
            base_leases = (cl.apiserver_requests("leases") - l0) / (time.time() - t0)
            base_cpu = (proc_ticks(api_pid) - c0) / hz / (time.time() - t0)
            print(f"scale: starting {n_agents} agents")
            for i, nd in enumerate(nodes):
                agents.append(AgentProc(agent_config(nd, f"{s.host}:{s.port}", cl.agent_kubeconfig, "",
                                                     interval="2s", timeout="1s"),
                                        os.path.join(work, "scale", nd)))
            time.sleep(30)
            alive = sum(1 for a in agents if a.proc.poll() is None)
            r1, l1, t1 = cl.apiserver_requests(), cl.apiserver_requests("leases"), time.time()
            a1 = sum(a.cpu_ticks() for a in agents)
            c1 = proc_ticks(api_pid)
            time.sleep(seconds)
            dt = time.time() - t1
            rate = (cl.apiserver_requests() - r1) / dt
            lease_rate = (cl.apiserver_requests("leases") - l1) / dt - base_leases
            agent_cpu = (sum(a.cpu_ticks() for a in agents) - a1) / hz / dt
            api_cpu = (proc_ticks(api_pid) - c1) / hz / dt
            rss = 0
            for a in agents:
                try:
                    for line in open(f"/proc/{a.proc.pid}/status"):
                        if line.startswith("RssAnon:"):
                            rss += int(line.split()[1])
                except OSError:
                    pass
        finally:
            for a in agents:
                a.proc.send_signal(signal.SIGTERM)
            for a in agents:
                try:
                    a.proc.wait(10)
                except subprocess.TimeoutExpired:
                    a.proc.kill()
            for nd in nodes:
                cl.delete_node(nd)
    own = rate - base_rate
    print(f"scale: {alive}/{n_agents} agents alive; over {seconds} s:")
    print(f"  agents' CPU: {agent_cpu * 100:.1f} % of one core in all, "
          f"{agent_cpu * 100 / n_agents:.3f} % per agent; anonymous RSS {rss / 1024 / n_agents:.2f} MiB per agent")
    print(f"  API server: {rate:.1f} requests/s ({base_rate:.1f}/s before the agents: the agents add {own:.1f}/s, "
          f"{own * 60 / n_agents:.1f} per agent per minute; Lease requests {lease_rate:.1f}/s more); "
          f"kube-apiserver CPU {api_cpu * 100:.0f} % of a core (was {base_cpu * 100:.0f} %)")
    per_agent = own / n_agents
    print(f"  5,000 nodes at that rate: {per_agent * 5000:.0f} requests/s of Lease updates, "
          f"{per_agent * 5000 * 60:.0f} per minute; the kubelets' own node Leases (every 10 s) are the same order")
    return own


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["latency", "steady", "scale", "all"])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--kubeconfig", help="a running local cluster's admin kubeconfig (default: start one)")
    args = ap.parse_args()
    if not os.access(AGENT, os.X_OK):
        raise SystemExit(f"{AGENT} not built: run scripts/build")
    cl = Cluster(args.kubeconfig)
    work = tempfile.mkdtemp(prefix="ew-bench-agents-")
    try:
        cl.ensure_namespace(NS)
        if args.what in ("latency", "all"):
            bench_latency(cl, args.trials, work)
        if args.what in ("steady", "all"):
            bench_steady(cl, args.seconds, work)
        if args.what in ("scale", "all"):
            bench_scale(cl, args.agents, args.seconds, work)
    finally:
        cl.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
