"""Real fanout processes for the SDK's tests: a coordinator, C++ workers,
the example C++ worker and Python workers, each killed when its test ends.

The binaries come from $FANOUT_BIN (set by ctest: build/bin/fanout) and the
example worker next to it. Every wait is on a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Callable, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
FANOUT = os.environ.get("FANOUT_BIN") or os.path.join(PYTHON_DIR, "..", "build", "bin", "fanout")
EXAMPLE_WORKER = os.path.join(os.path.dirname(FANOUT), "fanout-example-worker")


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Process:
    """A child in a process group of its own, killed (all of it) by kill()."""

    def __init__(self, argv: List[str], log: str, env: Optional[dict] = None) -> None:
        self.argv = argv
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **(env or {})},
            )

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


class ClusterTest(unittest.TestCase):
    """Each test gets a coordinator of its own (no journal, no dashboard)."""

    keys: Optional[str] = None  # a key directory: the cluster runs keyed

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fanout-sdk-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.processes: List[Process] = []
        self.addCleanup(self._kill_all)
        ready = os.path.join(self.dir, "coordinator.ready")
        argv = [FANOUT, "--log-level", "info"]
        if self.keys:
            argv += ["--keys", self.keys]
        argv += ["coordinator", "--workers-endpoint", "tcp://127.0.0.1:*",
                 "--clients-endpoint", "tcp://127.0.0.1:*", "--ready-file", ready,
                 "--journal", os.path.join(self.dir, "coordinator.db"), "--http", ""]
        self.coordinator = self.start(argv, "coordinator")
        self.assertTrue(eventually(lambda: os.path.exists(ready) or self.coordinator.proc.poll() is not None),
                        "the coordinator did not start")
        self.assertIsNone(self.coordinator.proc.poll(), self.coordinator.output())
        with open(ready) as f:
            endpoints = json.load(f)
        self.workers_at = endpoints["workers"]
        self.clients_at = endpoints["clients"]

    def _kill_all(self) -> None:
        for p in self.processes:
            p.kill()

    def start(self, argv: List[str], name: str, env: Optional[dict] = None) -> Process:
        p = Process(argv, os.path.join(self.dir, f"{name}.log"), env)
        self.processes.append(p)
        return p

    def python_worker(self, worker_id: str, *flags: str) -> Process:
        """tests/py_worker.py: a Python worker (see its --help)."""
        argv = [sys.executable, os.path.join(HERE, "py_worker.py"), self.workers_at,
                "--id", worker_id, *flags]
        if self.keys:
            argv += ["--keys", self.keys]
        return self.start(argv, worker_id, {"PYTHONPATH": PYTHON_DIR})

    def cpp_worker(self, worker_id: str) -> Process:
        argv = [FANOUT, "--log-level", "info"]
        if self.keys:
            argv += ["--keys", self.keys]
        return self.start(argv + ["worker", "--coordinator", self.workers_at, "--id", worker_id],
                          worker_id)

    def example_worker(self, worker_id: str) -> Process:
        argv = [EXAMPLE_WORKER, "--coordinator", self.workers_at, "--id", worker_id]
        if self.keys:
            argv += ["--keys", self.keys]
        return self.start(argv, worker_id)

    def fanout(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [FANOUT]
        if self.keys:
            argv += ["--keys", self.keys]
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout)

    def wait_for_workers(self, client, *ids: str, timeout: float = 15.0) -> None:
        def joined() -> bool:
            return set(ids) <= {w["worker_id"] for w in client.status().get("workers", [])}

        self.assertTrue(eventually(joined, timeout), f"workers {ids} did not join")
