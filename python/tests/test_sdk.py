"""The Python SDK and the call job against real fanout processes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from collections import Counter

import fanout
from harness import FANOUT, PYTHON_DIR, ClusterTest, eventually


class CallTest(ClusterTest):
    def client(self, **kw) -> fanout.Client:
        c = fanout.Client(self.clients_at, keys=self.keys, **kw)
        self.addCleanup(c.close)
        return c

    def test_map_returns_every_value_in_order(self):
        c = self.client()
        self.python_worker("py1")
        self.wait_for_workers(c, "py1")
        items = [str(i) for i in range(200)]
        self.assertEqual(c.map("square", items), [str(i * i) for i in range(200)])
        # Under each model; an async def function runs on the worker's loop.
        for model in ("sync", "threads", "async"):
            self.assertEqual(c.map("echo", ["a", "b", "c"], model=model), ["a", "b", "c"], model)
        self.assertEqual(c.map("asleep", [str(i) for i in range(20)], model="async"),
                         [str(i) for i in range(20)])

    def test_tasks_go_only_to_workers_that_serve_their_name(self):
        c = self.client()
        self.python_worker("py1")
        self.cpp_worker("cpp1")
        self.wait_for_workers(c, "py1", "cpp1")
        job = c.submit("pyonly", [str(i) for i in range(60)]).wait()
        self.assertEqual(job.ok, 60)
        self.assertEqual({r.worker for r in job.results.values()}, {"py1"})
        # A built-in kind runs on the C++ worker only: the Python one does not serve it.
        r = self.fanout("submit", "math", "--count", "20", "--json", "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 0, r.stderr)
        ran_on = {row["worker"] for row in json.loads(r.stdout.splitlines()[-1])["results"]}
        self.assertEqual(ran_on, {"cpp1"})
        # fanout status says who serves what.
        status = self.fanout("status", "--coordinator", self.clients_at)
        self.assertRegex(status.stdout, r"py1 .*call \((.*, )?pyonly(, .*)?\)")
        as_json = json.loads(self.fanout("status", "--json", "--coordinator", self.clients_at).stdout)
        by_id = {w["worker_id"]: w for w in as_json["workers"]}
        self.assertIn("pyonly", by_id["py1"]["functions"])
        self.assertEqual(by_id["cpp1"]["functions"], [])

    def test_an_exception_is_a_failed_task_and_the_worker_lives_on(self):
        c = self.client()
        self.python_worker("py1")
        self.wait_for_workers(c, "py1")
        job = c.submit("boom", ["a", "bad", "c"]).wait()
        self.assertEqual((job.ok, job.failed), (2, 1))
        self.assertEqual(job.results[2].error, "boom: ValueError: cannot take 'bad'")
        with self.assertRaises(fanout.TaskFailed) as raised:
            c.map("boom", ["a", "bad"])
        self.assertEqual(raised.exception.index, 2)
        self.assertIn("cannot take 'bad'", str(raised.exception))
        self.assertEqual(c.map("echo", ["still here"]), ["still here"])

    def test_a_worker_killed_mid_job_loses_nothing_and_doubles_nothing(self):
        c = self.client()
        calls = os.path.join(self.dir, "calls")
        victim = self.python_worker("py1", "--concurrency", "4", "--calls", calls)
        self.python_worker("py2", "--concurrency", "4", "--calls", calls)
        self.wait_for_workers(c, "py1", "py2")
        items = [str(i) for i in range(200)]
        job = c.submit("slow", items)
        seen = []
        for r in job:
            seen.append(r.index)
            if len(seen) == 40:
                victim.kill()  # SIGKILL: its running tasks are lost with it
        self.assertEqual(job.ok, 200)
        self.assertEqual(sorted(seen), list(range(1, 201)), "every result once")
        self.assertEqual(job.values(), items)
        with open(calls) as f:
            ran = Counter(f.read().split())
        self.assertEqual(set(ran), set(items), "every item ran")

    def test_a_task_that_hangs_past_its_deadline_runs_elsewhere(self):
        c = self.client()
        self.python_worker("py-hangs")
        self.wait_for_workers(c, "py-hangs")
        job = c.submit("hang", ["one"], task_timeout=1.0)
        self.assertTrue(eventually(lambda: any(j["running"] for j in c.jobs())))
        self.python_worker("py2")
        self.assertEqual(job.values(), ["one on py2"])
        self.assertEqual(job.results[1].attempt, 2)

    def test_a_name_nobody_serves_waits_and_its_client_says_so_within_a_second(self):
        said = []
        c = self.client(on_waiting=lambda job, reason: said.append((time.monotonic(), reason)))
        self.python_worker("py-echo")  # serves echo, not resize
        self.wait_for_workers(c, "py-echo")
        started = time.monotonic()
        job = c.submit("resize", ["x.png"])
        with self.assertRaises(TimeoutError):
            job.wait(timeout=1.0)
        self.assertTrue(said, "the client was not told why the job waits")
        self.assertLess(said[0][0] - started, 1.0)
        self.assertEqual(said[0][1], "no connected worker serves 'resize'")
        # A worker that serves it comes: the job runs.
        self.start([sys.executable, "-c", RESIZE_WORKER, self.workers_at], "resizer",
                   {"PYTHONPATH": PYTHON_DIR})
        self.assertEqual(job.values(), ["resized x.png"])

    def test_cpp_and_python_workers_share_one_job(self):
        c = self.client()
        self.python_worker("py1")
        self.example_worker("cxx1")
        self.wait_for_workers(c, "py1", "cxx1")
        items = [f"item {i}" for i in range(300)]
        job = c.submit("reverse", items, model="threads", concurrency=4).wait()
        self.assertEqual(job.values(), [s[::-1] for s in items])
        self.assertEqual({r.worker for r in job.results.values()}, {"py1", "cxx1"})

    def test_fanout_submit_call_from_the_terminal(self):
        self.example_worker("cxx1")
        self.python_worker("py1")
        c = self.client()
        self.wait_for_workers(c, "cxx1", "py1")
        r = self.fanout("submit", "call", "upper", "--arg", "hello", "--arg", "wörld", "--json",
                        "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout.splitlines()[-1])
        self.assertEqual([row["value"] for row in out["results"]], ["HELLO", "WöRLD"])
        # Items from a file, one per line; a failure is the task's, exit 1.
        items = os.path.join(self.dir, "items")
        with open(items, "w") as f:
            f.write("one\ntwo\n")
        r = self.fanout("submit", "call", "fail", "--args-file", items, "--json",
                        "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 1, r.stderr)
        out = json.loads(r.stdout.splitlines()[-1])
        self.assertEqual([row["error"] for row in out["results"]],
                         ["fail: refused 'one'", "fail: refused 'two'"])
        # Bytes that are not text are base64 in --json.
        r = self.fanout("submit", "call", "bytes", "--arg", "ab", "--json",
                        "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 0, r.stderr)
        value = json.loads(r.stdout.splitlines()[-1])["results"][0]["value"]
        self.assertEqual(base64.b64decode(value), b"\xff\x00ab")
        # The human output names the calls.
        r = self.fanout("submit", "call", "reverse", "--arg", "abc", "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cba", r.stdout)
        # A bad name is one line and exit 2.
        r = self.fanout("submit", "call", "no spaces", "--arg", "x", "--coordinator", self.clients_at)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not a function name", r.stderr)

    def test_sigterm_drains_a_python_worker(self):
        c = self.client()
        calls = os.path.join(self.dir, "calls")
        leaving = self.python_worker("py1", "--concurrency", "2", "--calls", calls)
        self.python_worker("py2", "--concurrency", "2", "--calls", calls)
        self.wait_for_workers(c, "py1", "py2")
        job = c.submit("slow", [str(i) for i in range(100)])
        for r in job:
            if len(job.results) == 10:
                leaving.signal(signal.SIGTERM)
        self.assertEqual(leaving.wait(10), 0, leaving.output())
        self.assertIn("drained", leaving.output())
        self.assertEqual(job.ok, 100)
        self.assertEqual(len(job.results), 100)

    def test_detach_watch_jobs_and_cancel(self):
        c = self.client()
        self.python_worker("py1", "--concurrency", "1")
        self.wait_for_workers(c, "py1")
        job = c.submit("slow", [str(i) for i in range(400)], detach=True)
        listed = {j["job_id"]: j for j in c.jobs()}
        self.assertIn(job.id, listed)
        self.assertEqual(listed[job.id]["kind"], "call")
        self.assertTrue(listed[job.id]["detached"])
        c.cancel(job.id, reason="enough")
        watched = c.watch(job.id).wait(10)
        self.assertRegex(watched.reason, "cancelled by .*: enough")
        self.assertLess(watched.ok, 400)
        with self.assertRaises(fanout.FanoutError):
            c.cancel(job.id)  # it has ended


RESIZE_WORKER = """
import sys, fanout
w = fanout.Worker(sys.argv[1], id="resizer", concurrency=2)
@w.task("resize")
def resize(arg):
    return "resized " + arg
w.run()
"""


class KeyedCallTest(ClusterTest):
    @classmethod
    def setUpClass(cls):
        cls._keydir = tempfile.mkdtemp(prefix="fanout-sdk-keys-")
        cls.keys = os.path.join(cls._keydir, "keys")
        subprocess.run([FANOUT, "keygen", cls.keys], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls._keydir, True)

    def test_a_keyed_cluster_runs_python_workers_and_turns_strangers_away(self):
        c = fanout.Client(self.clients_at, keys=self.keys)
        self.addCleanup(c.close)
        self.python_worker("py1")
        self.wait_for_workers(c, "py1")
        self.assertEqual(c.map("echo", ["secret"]), ["secret"])
        # A client without the keys gets no answer, said plainly.
        stranger = fanout.Client(self.clients_at, timeout=1.5)
        self.addCleanup(stranger.close)
        with self.assertRaisesRegex(fanout.FanoutError, "no answer from the coordinator"):
            stranger.status()


if __name__ == "__main__":
    unittest.main()
