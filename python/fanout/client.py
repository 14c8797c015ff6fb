"""A fanout client in Python: submit call jobs, follow, list and cancel them.

    c = fanout.Client("tcp://127.0.0.1:5556")
    print(c.map("resize", ["a.png", "b.png"]))   # values in order, or TaskFailed
    job = c.submit("resize", ["a.png"], detach=True)
    c.watch(job.id).wait()

The client side of proto/fanout.proto, as ``fanout submit`` speaks it: a
Submit answered by Accepted or Rejected, then the job's events and its
JobDone; a heartbeat every 500 ms while it follows a job (a coordinator
cancels a job whose client is silent for 10 s, unless it is detached), and
a Watch when the coordinator falls silent (it may have restarted from its
journal: the answer replays the results).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Union

import zmq
from google.protobuf import json_format

from . import _wire
from ._wire import FanoutError, pb

Item = Union[str, bytes]

_MODELS = {"sync": pb.SYNC, "threads": pb.THREADS, "async": pb.ASYNC}
_MODEL_NAMES = {v: k for k, v in _MODELS.items()}


class TaskFailed(FanoutError):
    """A task of the job failed: ``index`` (1-based), ``error`` its message."""

    def __init__(self, job_id: str, index: int, error: str) -> None:
        super().__init__(f"task {index} of job {job_id} failed: {error}")
        self.job_id = job_id
        self.index = index
        self.error = error


@dataclass
class TaskResult:
    index: int  # 1-based, the item's position
    ok: bool
    value: Optional[Item]  # str, or bytes for a value that is not UTF-8
    error: str
    worker: str
    attempt: int
    started_us: int
    finished_us: int


@dataclass
class Job:
    """A job this client submitted or follows; :meth:`wait` follows it to its end."""

    id: str
    tasks: int
    _client: "Client" = field(repr=False)
    _owner: bool = field(default=True, repr=False)
    results: Dict[int, TaskResult] = field(default_factory=dict)
    done: Optional[pb.JobDone] = None
    waiting: str = ""  # why no task can run now, while that lasts

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.results.values())

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results.values())

    @property
    def reason(self) -> str:
        """Why it ended early (cancelled), empty otherwise."""
        return self.done.reason if self.done else ""

    def __iter__(self) -> Iterator[TaskResult]:
        """Results as they arrive, then returns at the job's end."""
        return self._client._follow(self, self._owner)

    def wait(self, timeout: Optional[float] = None) -> "Job":
        """Follows the job to its end; raises TimeoutError after ``timeout`` seconds."""
        for _ in self._client._follow(self, self._owner, timeout):
            pass
        return self

    def values(self) -> List[Optional[Item]]:
        """Every task's value, in item order; TaskFailed for the first that failed."""
        self.wait()
        out = []
        for index in range(1, self.tasks + 1):
            r = self.results.get(index)
            if r is None:
                raise TaskFailed(self.id, index, self.reason or "no result")
            if not r.ok:
                raise TaskFailed(self.id, index, r.error)
            out.append(r.value)
        return out


class Client:
    """Talks to a coordinator's clients endpoint (``fanout coordinator --clients-endpoint``).

    It follows one job at a time (a loop over a job's results may ask the
    coordinator anything else); to follow two jobs at once, use two clients.
    """

    def __init__(
        self,
        coordinator: str = "tcp://127.0.0.1:5556",
        *,
        keys: Optional[str] = None,
        timeout: float = 10.0,
        on_waiting: Optional[Callable[[str, str], None]] = None,
    ) -> None:
        """``keys``: the key directory (client.key, coordinator.pub) of a keyed
        cluster. ``timeout``: how long to wait for an answer. ``on_waiting(job_id,
        reason)``: told when a job waits for a worker (default: a line on stderr)."""
        self.coordinator = coordinator
        self.timeout = timeout
        self.on_waiting = on_waiting or _say_waiting
        self._ctx = zmq.Context()
        self._sock = _wire.dealer(self._ctx, coordinator, keys, "client")
        # One conversation at a time on the socket; reentrant, so a loop over a
        # job's results may ask something (status, cancel) in its body. What an
        # answer's wait reads that is not the answer waits in _pending.
        self._lock = threading.RLock()
        self._pending: Deque[pb.Envelope] = deque()

    def close(self) -> None:
        self._sock.close()
        self._ctx.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- jobs -------------------------------------------------------------

    def submit(
        self,
        name: str,
        args: Iterable[Item],
        *,
        model: str = "threads",
        concurrency: int = 0,
        priority: Optional[int] = None,
        max_attempts: int = 0,
        task_timeout: float = 0,
        detach: bool = False,
    ) -> Job:
        """A call job: ``name`` called once per item of ``args`` on the workers that serve it.

        ``concurrency``: tasks at once per worker (0: the worker's default).
        ``priority``: 0-9, higher first (default 5). ``max_attempts``: runs of
        a task whose worker died or hung (0: the coordinator's default).
        ``task_timeout``: seconds a task may run before it runs elsewhere (0:
        the coordinator's default). A detached job runs on without this
        client; follow it with :meth:`watch`.
        """
        if model not in _MODELS:
            raise ValueError(f"model is one of {', '.join(_MODELS)}, not '{model}'")
        items = [a.encode("utf-8") if isinstance(a, str) else bytes(a) for a in args]
        spec = pb.JobSpec(
            model=_MODELS[model],
            count=len(items),
            concurrency=concurrency,
            max_attempts=max_attempts,
            task_timeout_ms=round(task_timeout * 1000),
            detached=detach,
            origin=_wire.origin(),
            call=pb.CallJob(name=name, items=items),
        )
        if priority is not None:
            spec.priority = priority
        # Results only: a task's start is not what a caller of map() waits for.
        submit = pb.Submit(spec=spec, results_only=True)
        accepted = self._ask(_wire.envelope(submit=submit), lambda e: e.HasField("accepted")).accepted
        return Job(accepted.job_id, accepted.tasks, self, _owner=not detach)

    def map(self, name: str, args: Iterable[Item], **options: Any) -> List[Optional[Item]]:
        """Calls ``name`` on every item; the values in order. TaskFailed if one failed."""
        return self.submit(name, args, **options).values()

    def watch(self, job_id: str) -> Job:
        """Follows a job from here (its results so far are replayed)."""
        accepted = self._ask(
            _wire.envelope(watch=pb.Watch(job_id=job_id)), lambda e: e.HasField("accepted")
        ).accepted
        return Job(job_id, accepted.tasks, self, _owner=False)

    def result(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """A job's results, once it has ended."""
        return self.watch(job_id).wait(timeout)

    def cancel(self, job_id: str, reason: str = "") -> None:
        """Ends a job (its running tasks are stopped); FanoutError if it has ended."""
        cancel = pb.Cancel(job_id=job_id, reason=reason, by=_wire.origin())
        self._ask(_wire.envelope(cancel=cancel), lambda e: e.HasField("accepted"))

    def status(self) -> Dict[str, Any]:
        """The coordinator's StatusReply as a dict: its workers (with the
        ``functions`` each serves), tasks queued and dispatched, tasks/s..."""
        reply = self._ask(_wire.envelope(status=pb.StatusRequest()),
                          lambda e: e.HasField("status_reply"))
        return json_format.MessageToDict(
            reply.status_reply, preserving_proto_field_name=True,
            including_default_value_fields=True,
        )

    def jobs(self, all: bool = False) -> List[Dict[str, Any]]:
        """The running jobs (with ``all``, the ended ones this coordinator keeps
        too), each as ``fanout jobs --json`` prints it."""
        reply = self._ask(_wire.envelope(jobs=pb.JobsRequest(all=all)),
                          lambda e: e.HasField("jobs_reply"))
        return [
            {
                "job_id": j.job_id, "kind": j.kind, "model": _MODEL_NAMES.get(j.model, ""),
                "state": j.state, "tasks": j.tasks, "ok": j.ok, "failed": j.failed,
                "running": j.running, "workers": j.workers, "priority": j.priority,
                "detached": j.detached,
                "submitted_by": {"host": j.origin.host, "pid": j.origin.pid, "user": j.origin.user},
                "accepted_ms": j.accepted_us // 1000,
                "ended_ms": j.ended_us // 1000 if j.ended_us else None,
                "reason": j.reason or None,
            }
            for j in reply.jobs_reply.jobs
        ]

    # ---- the conversation ----------------------------------------------------

    def _ask(self, request: pb.Envelope, answered: Callable[[pb.Envelope], bool]) -> pb.Envelope:
        with self._lock:
            _wire.send(self._sock, [request])
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self._sock.poll(left * 1000):
                    raise FanoutError(
                        f"no answer from the coordinator at {self.coordinator} "
                        f"in {self.timeout:g} s (is it running? are the keys right?)"
                    )
                for env in _wire.decode(self._sock.recv_multipart()):
                    if answered(env):
                        return env
                    if env.HasField("rejected"):
                        raise FanoutError(env.rejected.reason)
                    if env.HasField("error"):
                        raise FanoutError(env.error.message)
                    self._pending.append(env)  # a followed job's events: not ours to drop

    def _next(self, timeout: float) -> Optional[pb.Envelope]:
        """The next envelope from the coordinator, None after ``timeout`` seconds."""
        if not self._pending and self._sock.poll(timeout * 1000):
            self._pending.extend(_wire.decode(self._sock.recv_multipart()))
        return self._pending.popleft() if self._pending else None

    def _follow(self, job: Job, owner: bool, timeout: Optional[float] = None) -> Iterator[TaskResult]:
        """Yields the job's new results until its JobDone."""
        if job.done is not None:
            return
        give_up = None if timeout is None else time.monotonic() + timeout
        beat = _wire.HEARTBEAT_S
        with self._lock:
            heard = next_beat = next_watch = time.monotonic()
            while True:
                now = time.monotonic()
                if give_up is not None and now >= give_up:
                    raise TimeoutError(f"job {job.id} did not end within {timeout:g} s")
                if now >= next_beat:
                    _wire.send(self._sock, [_wire.envelope(heartbeat=pb.Heartbeat())])
                    next_beat = now + beat
                if now - heard > _wire.LIVENESS * beat and now >= next_watch:
                    # The coordinator may have restarted: the answer replays the results.
                    watch = pb.Watch(job_id=job.id, owner=owner)
                    _wire.send(self._sock, [_wire.envelope(watch=watch)])
                    next_watch = now + 2 * beat
                if now - heard > max(self.timeout, 3 * beat):
                    raise FanoutError(
                        f"lost the coordinator at {self.coordinator}: silent for {now - heard:.1f} s"
                    )
                env = self._next(0.1)
                if env is None:
                    continue
                heard = time.monotonic()
                body = env.WhichOneof("body")
                if body == "events" and env.events.job_id == job.id:
                    for event in env.events.events:
                        if event.type != pb.TaskEvent.DONE or event.index in job.results:
                            continue
                        r = _result(event)
                        job.results[r.index] = r
                        yield r
                elif body == "waiting" and env.waiting.job_id == job.id:
                    if env.waiting.reason and env.waiting.reason != job.waiting:
                        self.on_waiting(job.id, env.waiting.reason)
                    job.waiting = env.waiting.reason
                elif body == "job_done" and env.job_done.job_id == job.id:
                    job.done = env.job_done
                    return
                elif body == "error" and env.error.code == pb.Error.UNKNOWN_JOB:
                    raise FanoutError(env.error.message)


def _result(event: pb.TaskEvent) -> TaskResult:
    r = event.result
    which = r.WhichOneof("value")
    value: Optional[Item] = None
    if which == "text":
        value = r.text
    elif which == "data":
        value = r.data
    elif which == "number":
        value = repr(r.number)
    return TaskResult(
        index=event.index, ok=r.ok, value=value, error=r.error, worker=r.worker_id or event.worker,
        attempt=event.attempt, started_us=r.started_us, finished_us=r.finished_us,
    )


def _say_waiting(job_id: str, reason: str) -> None:
    print(f"fanout: job {job_id} waiting: {reason}", file=sys.stderr, flush=True)

