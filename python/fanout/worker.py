"""A fanout worker in Python: it serves named functions to ``fanout submit call``.

    w = fanout.Worker("tcp://127.0.0.1:5555", id="py1", concurrency=8)

    @w.task("resize")
    def resize(arg: str) -> str:
        ...

    w.run()

It speaks the worker side of proto/fanout.proto as the C++ worker does: a
Hello naming its functions (after every reconnection, with the tasks it
still holds), heartbeats every 500 ms, a reconnection with back-off when
the coordinator falls silent for three of them, and a drain on SIGTERM or
SIGINT (tasks not started go back, running ones finish and are reported,
then ``run()`` returns). The coordinator's credit keeps at most
``concurrency`` tasks here at once (the Hello's ``slots``).

One I/O thread owns the socket; functions run on a pool of ``concurrency``
threads (``async def`` functions on one asyncio loop thread) and hand their
results back over ``inproc://``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import random
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import zmq

from . import _wire
from ._wire import FanoutError, pb

log = logging.getLogger("fanout.worker")

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:/")
MAX_FUNCTION_NAME = 100  # as jobs/call/functions.h

Key = Tuple[str, int]  # (job id, task index)


def check_function_name(name: str) -> None:
    """Raises ValueError unless ``name`` is one a worker may serve."""
    if not name:
        raise ValueError("a function needs a name")
    if len(name) > MAX_FUNCTION_NAME:
        raise ValueError(f"a function's name has at most {MAX_FUNCTION_NAME} characters")
    if not set(name) <= _NAME_CHARS:
        raise ValueError(f"'{name}' is not a function name: letters, digits and _ . - : / only")


def _as_arg(raw: bytes) -> Any:
    """A task's item as the function sees it: str when it is UTF-8, else bytes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


class Worker:
    """Serves the functions registered with :meth:`task` until drained."""

    def __init__(
        self,
        coordinator: str = "tcp://127.0.0.1:5555",
        *,
        id: Optional[str] = None,
        concurrency: int = 8,
        keys: Optional[str] = None,
        heartbeat: float = _wire.HEARTBEAT_S,
        liveness: int = _wire.LIVENESS,
        reconnect_max: float = 8.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency is at least 1")
        self.coordinator = coordinator
        self.id = id or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = concurrency
        self.keys = keys
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.reconnect_max = reconnect_max
        self._functions: Dict[str, Callable[[Any], Any]] = {}
        self._stop = threading.Event()  # asks the loop to drain (stop() or a signal)
        self._lock = threading.Lock()
        self._holding: Dict[Key, pb.TaskRef] = {}  # started or queued here, not yet reported
        self._stopped_jobs: Set[str] = set()  # StopTasks: their queued tasks are not run
        self._lanes = itertools.count()
        self._local = threading.local()
        self._pushes: List[zmq.Socket] = []  # one per executing thread, closed by run()

    # ---- registering ----------------------------------------------------

    def task(self, name: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Registers the decorated function under ``name``.

        It takes the task's item (``str``, or ``bytes`` when the item is not
        UTF-8) and returns ``str`` or ``bytes`` (other values are sent as
        ``str(value)``); an exception is the task's failure, with its message.
        """
        check_function_name(name)

        def register(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
            if name in self._functions:
                raise ValueError(f"function '{name}' is served twice")
            self._functions[name] = function
            return function

        return register

    @property
    def functions(self) -> List[str]:
        return sorted(self._functions)

    def stop(self) -> None:
        """Drains, as SIGTERM does: ``run()`` returns once running tasks are reported."""
        self._stop.set()

    # ---- running --------------------------------------------------------

    def run(self) -> None:
        """Serves until drained (SIGTERM, SIGINT or :meth:`stop`)."""
        if not self._functions:
            raise FanoutError("a worker needs at least one function: decorate one with @w.task(NAME)")
        restore = self._catch_signals()
        ctx = zmq.Context()
        self._ctx = ctx
        self._results = ctx.socket(zmq.PULL)
        self._results_endpoint = f"inproc://fanout-results-{id(self)}"
        self._results.bind(self._results_endpoint)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fanout-task")
        loop = asyncio.new_event_loop()
        loop_thread = threading.Thread(target=loop.run_forever, name="fanout-async", daemon=True)
        loop_thread.start()
        try:
            self._serve(pool, loop)
        finally:
            pool.shutdown(wait=True)
            loop.call_soon_threadsafe(loop.stop)
            loop_thread.join()
            loop.close()
            for push in self._pushes:  # their threads have ended
                push.close()
            self._pushes.clear()
            self._results.close()
            ctx.term()
            restore()

    def _catch_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        def drain(signum: int, _frame: Any) -> None:
            if self._stop.is_set() and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C does not wait
            self._stop.set()

        for s in old:
            signal.signal(s, drain)
        return lambda: [signal.signal(s, h) for s, h in old.items()] and None

    def _serve(self, pool: ThreadPoolExecutor, loop: asyncio.AbstractEventLoop) -> None:
        log.info(
            "worker %s starting: coordinator %s, %d slots; serves %s",
            self.id, self.coordinator, self.concurrency, ", ".join(self.functions),
        )
        backoff = 0.25
        draining = False
        running = 0
        unsent: List[pb.Envelope] = []
        dealer = self._connect()
        heard = time.monotonic()
        next_beat = heard + self.heartbeat
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(self._results, zmq.POLLIN)
        while True:
            if self._stop.is_set() and not draining:
                draining = True
                log.info("worker %s draining: %d tasks running", self.id, running)
                _wire.send(dealer, [_wire.envelope(drain=pb.Drain(reason="signal"))])
            if draining and running == 0 and not unsent:
                _wire.send(dealer, [_wire.envelope(drain=pb.Drain(reason="signal", leaving=True))])
                dealer.close(linger=1000)  # what is queued still goes
                log.info("worker %s drained: leaving", self.id)
                return
            timeout = max(0.0, next_beat - time.monotonic())
            ready = dict(poller.poll(timeout * 1000))
            now = time.monotonic()
            if self._results in ready:
                while True:
                    try:
                        frame = self._results.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    running -= 1
                    env = pb.Envelope()
                    env.ParseFromString(frame)
                    unsent.append(env)
            if unsent:
                with self._lock:
                    for env in unsent:
                        self._holding.pop((env.result.job_id, env.result.index), None)
                _wire.send(dealer, unsent)
                unsent = []
            if dealer in ready:
                heard = now
                backoff = 0.25
                for env in _wire.decode(dealer.recv_multipart()):
                    running += self._on_coordinator(env, dealer, draining, pool, loop)
            if now >= next_beat:
                _wire.send(dealer, [_wire.envelope(heartbeat=pb.Heartbeat(sent_us=_wire.now_us()))])
                next_beat = now + self.heartbeat
            if now - heard > self.heartbeat * self.liveness:
                wait = backoff * (0.5 + random.random() / 2)
                log.warning(
                    "worker %s: coordinator %s silent for %.1f s, reconnecting in %.2f s",
                    self.id, self.coordinator, now - heard, wait,
                )
                poller.unregister(dealer)
                dealer.close()
                if self._stop.wait(wait) and running == 0:
                    return  # drained while nobody listened: nothing to report
                backoff = min(backoff * 2, self.reconnect_max)
                dealer = self._connect()
                poller.register(dealer, zmq.POLLIN)
                heard = time.monotonic()

    def _hello(self) -> pb.Envelope:
        with self._lock:
            holding = list(self._holding.values())
        return _wire.envelope(
            hello=pb.Hello(
                worker_id=self.id,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.concurrency,
                cores=os.cpu_count() or 1,
                version="python",
                holding=holding,
                serves=["call"],
                slots=self.concurrency,
                functions=self.functions,
            )
        )

    def _connect(self) -> zmq.Socket:
        dealer = _wire.dealer(self._ctx, self.coordinator, self.keys, "worker")
        _wire.send(dealer, [self._hello()])
        return dealer

    def _on_coordinator(
        self,
        env: pb.Envelope,
        dealer: zmq.Socket,
        draining: bool,
        pool: ThreadPoolExecutor,
        loop: asyncio.AbstractEventLoop,
    ) -> int:
        """Handles one envelope; how many tasks it started."""
        body = env.WhichOneof("body")
        if body == "task":
            task = env.task
            if draining:
                returned = pb.TaskReturned(
                    job_id=task.job_id, index=task.index, attempt=task.attempt, reason="draining"
                )
                _wire.send(dealer, [_wire.envelope(returned=returned)])
                return 0
            with self._lock:
                self._holding[(task.job_id, task.index)] = pb.TaskRef(
                    job_id=task.job_id, index=task.index, attempt=task.attempt
                )
            function = self._functions.get(task.call.name) if task.HasField("call") else None
            if function is not None and inspect.iscoroutinefunction(function):
                asyncio.run_coroutine_threadsafe(self._run_async(task, function), loop)
            else:
                pool.submit(self._run, task, function)
            return 1
        if body == "stop":
            with self._lock:
                self._stopped_jobs.add(env.stop.job_id)
        elif body == "error":
            code = pb.Error.Code.Name(env.error.code)
            if env.error.code == pb.Error.UNKNOWN_PEER:
                # A restarted coordinator does not know us: Hello on this connection.
                _wire.send(dealer, [self._hello()])
            elif env.error.code == pb.Error.WRONG_SERVICE:
                log.error("worker %s: %s", self.id, env.error.message)
                self._stop.set()
            else:
                log.warning("worker %s: coordinator says %s: %s", self.id, code, env.error.message)
        return 0

    # ---- executing (pool threads and the loop thread) ---------------------

    def _lane(self) -> int:
        lane = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._local.lane = next(self._lanes)
        return lane

    def _push(self, result: pb.Result) -> None:
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 1000)
            push.connect(self._results_endpoint)
            with self._lock:
                self._pushes.append(push)
        push.send(_wire.encode(_wire.envelope(result=result)))

    def _start(self, task: pb.Task) -> Tuple[pb.Result, bool]:
        result = pb.Result(
            job_id=task.job_id, index=task.index, attempt=task.attempt, worker_id=self.id,
            started_us=_wire.now_us(), thread=self._lane(),
        )
        with self._lock:
            stopped = task.job_id in self._stopped_jobs
        if stopped:
            result.ok = False
            result.error = "not run: the job ended"
        return result, not stopped

    def _finish(self, task: pb.Task, result: pb.Result, value: Any, error: Optional[str]) -> None:
        result.finished_us = _wire.now_us()
        if error is not None:
            result.ok = False
            result.error = error
        elif isinstance(value, (bytes, bytearray, memoryview)):
            result.ok = True
            raw = bytes(value)
            try:
                result.text = raw.decode("utf-8")
            except UnicodeDecodeError:
                result.data = raw
        else:
            result.ok = True
            result.text = "" if value is None else str(value)
        self._push(result)

    def _run(self, task: pb.Task, function: Optional[Callable[[Any], Any]]) -> None:
        result, go = self._start(task)
        if not go:
            self._push(result)
            return
        if function is None:
            self._finish(task, result, None, f"this worker does not serve '{task.call.name}'")
            return
        try:
            value = function(_as_arg(task.call.arg))
        except BaseException as e:  # the task's failure, never the worker's
            self._finish(task, result, None, _failure(task.call.name, e))
            return
        self._finish(task, result, value, None)

    async def _run_async(self, task: pb.Task, function: Callable[[Any], Any]) -> None:
        result, go = self._start(task)
        if not go:
            self._push(result)
            return
        try:
            value = await function(_as_arg(task.call.arg))
        except BaseException as e:
            self._finish(task, result, None, _failure(task.call.name, e))
            return
        self._finish(task, result, value, None)


def _failure(name: str, e: BaseException) -> str:
    message = str(e)
    return f"{name}: {type(e).__name__}: {message}" if message else f"{name}: {type(e).__name__}"
