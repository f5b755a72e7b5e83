#!/usr/bin/env python3
"""Benchmarks of the core agent against the SQL Server stand-in. Prints
figures; asserts nothing (bounds that must hold live in the tests).

  bench/agent.py exit   [--kills 200]    engine exit -> `failed` transition: p50, p99, max
  bench/agent.py hang   [--runs 10]      accept-and-hang -> `failed`, next to fall x interval + timeout
  bench/agent.py idle   [--seconds 60]   RSS and CPU at 2 probes/s

Latency is measured from the instant before kill(2) (CLOCK_REALTIME, in this
process) to the timestamp of the agent's own transition log line (CLOCK_REALTIME,
microseconds, taken when the transition happened), so polling adds nothing.
Build first: scripts/build.
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("SOURCE_ROOT", os.path.join(HERE, ".."))
os.environ.setdefault("EDGEWARDEN", os.path.join(HERE, "..", "build", "edgewarden"))
os.environ.setdefault("STANDIN", os.path.join(HERE, "..", "build", "tests", "fixtures", "sqlservr"))

from agent import Agent, free_port, yaml_config  # noqa: E402
from cgroup import Cgroup  # noqa: E402
from standin import StandIn  # noqa: E402


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def ts(line):
    return datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class LogTail:
    """Reads new JSON lines from the agent's log file as they come."""

    def __init__(self, path):
        self.f = open(path)

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        buf = ""
        while time.monotonic() < deadline:
            chunk = self.f.readline()
            if not chunk:
                time.sleep(0.0005)
                continue
            buf += chunk
            if not buf.endswith("\n"):
                continue
            line, buf = buf, ""
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if predicate(obj):
                return obj
        raise TimeoutError("no matching log line")


def setup(standin, cg, probes, extra="health: {startupGrace: 0s, crashLoop: {restarts: 0}}\n"):
    listen = f"127.0.0.1:{free_port()}"
    target = {"name": "sql", "port": standin.port, "process": {"comm": "sqlservr", "cgroup": cg.fragment},
              "probes": probes}
    cfg = yaml_config([target], listen=listen, extra=extra).replace("level: debug", "level: info")
    a = Agent(cfg, listen=listen)
    a.start()
    a.wait_state("sql", "healthy", 10)
    return a


def bench_exit(kills):
    lat = []
    with StandIn(restart_delay_ms=20) as s:
        cg = Cgroup()
        cg.add(s.parent_pid)
        cg.add(s.engine_pid)
        a = setup(s, cg, [{"kind": "process", "interval": "10s", "timeout": "1s", "jitter": 0, "rise": 1, "fall": 1}])
        tail = LogTail(a.log_path)
        for i in range(kills):
            pid = s.engine_pid
            t_kill = time.time()
            os.kill(pid, signal.SIGKILL)
            line = tail.wait(lambda o: o.get("state") == "failed", 10)
            lat.append((ts(line) - t_kill) * 1000.0)
            tail.wait(lambda o: o.get("state") == "healthy", 10)
            while s.engine_pid in (0, pid):
                time.sleep(0.001)
        a.stop()
        cg.remove()
    print(f"engine exit -> failed over {kills} kills: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, "
          f"max {max(lat):.2f} ms, mean {statistics.mean(lat):.2f} ms (target p99 <= 5 ms)")


def bench_hang(runs):
    interval, timeout, fall = 0.5, 0.5, 3
    bound = fall * interval + timeout
    lat = []
    with StandIn() as s:
        cg = Cgroup()
        a = setup(s, cg, [{"kind": "tds", "interval": f"{int(interval * 1000)}ms", "timeout": f"{int(timeout * 1000)}ms",
                           "jitter": 0, "rise": 1, "fall": fall}])
        tail = LogTail(a.log_path)
        for _ in range(runs):
            t0 = time.time()
            s.mode("hang")
            line = tail.wait(lambda o: o.get("state") == "failed", 30)
            lat.append(ts(line) - t0)
            s.mode("ok")
            tail.wait(lambda o: o.get("state") == "healthy", 30)
        a.stop()
        cg.remove()
    print(f"accept-and-hang -> failed over {runs} runs (interval {interval}s, timeout {timeout}s, fall {fall}): "
          f"min {min(lat):.3f} s, median {statistics.median(lat):.3f} s, max {max(lat):.3f} s; "
          f"bound fall x interval + timeout = {bound:.3f} s")


def bench_idle(seconds):
    with StandIn() as s:
        cg = Cgroup()
        cg.add(s.parent_pid)
        cg.add(s.engine_pid)
        a = setup(s, cg, [{"kind": "tds", "interval": "1s", "timeout": "500ms", "jitter": 0, "rise": 1, "fall": 3},
                          {"kind": "process", "interval": "1s", "timeout": "500ms", "jitter": 0, "rise": 1, "fall": 1}])
        pid = a.proc.pid

        def cpu_ns():
            # Time on CPU in nanoseconds (schedstat), not clock ticks: at this
            # load a 10 ms tick is too coarse to measure anything.
            with open(f"/proc/{pid}/schedstat") as f:
                return int(f.read().split()[0])

        time.sleep(2)
        c0, t0 = cpu_ns(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_ns(), time.monotonic()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        checks = sum(p["checks"] for p in a.target("sql")["probes"])
        a.stop()
        cg.remove()
    cpu_pct = (c1 - c0) / 1e9 / (t1 - t0) * 100.0
    print(f"idle at 2 probes/s over {seconds} s: private memory (RssAnon) {status['RssAnon'].strip()}, "
          f"RSS {status['VmRSS'].strip()} of which shared library pages (RssFile) {status['RssFile'].strip()}, "
          f"CPU {cpu_pct:.3f} % of one core ({checks} checks total) (targets: RSS <= 3 MiB, CPU <= 0.1 %)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("exit").add_argument("--kills", type=int, default=200)
    sub.add_parser("hang").add_argument("--runs", type=int, default=10)
    sub.add_parser("idle").add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    if args.cmd == "exit":
        bench_exit(args.kills)
    elif args.cmd == "hang":
        bench_hang(args.runs)
    else:
        bench_idle(args.seconds)


if __name__ == "__main__":
    main()
