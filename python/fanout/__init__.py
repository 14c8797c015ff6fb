"""fanout from Python: serve named functions to a fanout cluster, and call them.

Workers (``fanout.Worker``) register functions by name; clients
(``fanout.Client``) submit ``call`` jobs, one task per item, which the
coordinator routes only to workers that serve the name, with the same
credit, liveness, retries and exactly-once results as every fanout job.
Needs Debian's python3-zmq and python3-protobuf, and ``make build`` (which
generates ``fanout_pb2.py`` from proto/fanout.proto).
"""

from ._wire import FanoutError
from .client import Client, Job, TaskFailed, TaskResult
from .worker import Worker

__all__ = ["Client", "FanoutError", "Job", "TaskFailed", "TaskResult", "Worker"]
