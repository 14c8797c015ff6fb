#!/usr/bin/python3
"""Python no-op calls through fanout: tasks/s through one Python worker
(threads) and the round trip of one call, as JSON.

    bench/call.py [--fanout build/bin/fanout] [--tasks 20000] [--calls 300] [--runs 3]

It starts a coordinator (no journal, no dashboard) and one Python worker
serving "noop", then, per run: a job of --tasks no-op calls from one client
(tasks/s, submit to last result) and --calls jobs of one call each, one
after the other (the round trip's p50 and p90). Medians over the runs.
Celery's figures measured on this machine and Ray's published ones are in
the output for comparison, as they are in DEVELOPERS.md.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import fanout  # noqa: E402

WORKER = """
import sys, fanout
w = fanout.Worker(sys.argv[1], id="bench-py", concurrency=int(sys.argv[2]))
@w.task("noop")
def noop(arg):
    return arg
w.run()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanout", default=os.path.join(ROOT, "build", "bin", "fanout"))
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's threads")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="fanout-bench-call-")
    procs = []
    try:
        ready = os.path.join(workdir, "ready")
        procs.append(subprocess.Popen(
            [args.fanout, "--log-level", "warn", "coordinator", "--workers-endpoint",
             "tcp://127.0.0.1:*", "--clients-endpoint", "tcp://127.0.0.1:*",
             "--ready-file", ready, "--journal", "", "--http", ""], start_new_session=True))
        deadline = time.monotonic() + 15
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(ready) as f:
            endpoints = json.load(f)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, endpoints["workers"], str(args.concurrency)],
            env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")},
            start_new_session=True, stderr=subprocess.DEVNULL))
        client = fanout.Client(endpoints["clients"])
        deadline = time.monotonic() + 15
        while not client.status().get("workers") and time.monotonic() < deadline:
            time.sleep(0.05)

        rates, p50s, p90s = [], [], []
        items = [str(i) for i in range(args.tasks)]
        for _ in range(args.runs):
            start = time.perf_counter()
            values = client.map("noop", items, model="threads")
            rates.append(args.tasks / (time.perf_counter() - start))
            assert values == items
            trips = []
            for i in range(args.calls):
                t = time.perf_counter()
                client.map("noop", [str(i)], model="sync")
                trips.append((time.perf_counter() - t) * 1000)
            trips.sort()
            p50s.append(trips[len(trips) // 2])
            p90s.append(trips[len(trips) * 9 // 10])
        client.close()
        print(json.dumps({
            "bench": "call",
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}",
            "worker": f"one Python worker, threads, {args.concurrency} threads",
            "tasks": args.tasks,
            "runs": args.runs,
            "tasks_per_s_median": round(statistics.median(rates)),
            "tasks_per_s_runs": [round(r) for r in rates],
            "round_trip_ms_p50": round(statistics.median(p50s), 3),
            "round_trip_ms_p90": round(statistics.median(p90s), 3),
            "celery_measured_here": {"tasks_per_s": 490, "round_trip_ms_p50": 2.3},
            "ray_published": {"tasks_per_s": 8000, "round_trip_ms": 1.0},
        }, indent=2))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(workdir, True)


if __name__ == "__main__":
    main()
