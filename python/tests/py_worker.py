"""A Python worker for the SDK's tests.

    py_worker.py ENDPOINT --id ID [--concurrency N] [--keys DIR] [--calls FILE]

Serves: square (the item squared), echo, slow (echo after 50 ms), boom
(raises ValueError), pyonly (says its worker), asleep (async: echo after
10 ms), bytes (non-UTF-8 bytes), hang (never returns on the worker named
py-hangs), reverse. With --calls, each call appends
"<index item>\\n" to FILE, so a test counts how often each ran.
"""

import argparse
import asyncio
import logging
import os
import time

import fanout

parser = argparse.ArgumentParser()
parser.add_argument("endpoint")
parser.add_argument("--id", required=True)
parser.add_argument("--concurrency", type=int, default=8)
parser.add_argument("--keys")
parser.add_argument("--calls")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

w = fanout.Worker(args.endpoint, id=args.id, concurrency=args.concurrency, keys=args.keys)


def note(item: str) -> None:
    if args.calls:
        with open(args.calls, "a") as f:
            f.write(item + "\n")


@w.task("square")
def square(arg: str) -> str:
    return str(int(arg) ** 2)


@w.task("echo")
def echo(arg: str) -> str:
    return arg


@w.task("slow")
def slow(arg: str) -> str:
    note(arg)
    time.sleep(0.05)
    return arg


@w.task("boom")
def boom(arg: str) -> str:
    if arg == "bad":
        raise ValueError(f"cannot take {arg!r}")
    return arg


@w.task("pyonly")
def pyonly(arg: str) -> str:
    return f"{args.id}:{os.getpid()}"


@w.task("asleep")
async def asleep(arg: str) -> str:
    await asyncio.sleep(0.01)
    return arg


@w.task("bytes")
def raw(arg: str) -> bytes:
    return b"\xff\x00" + arg.encode()


@w.task("hang")
def hang(arg: str) -> str:
    if args.id == "py-hangs":
        time.sleep(3600)  # past any deadline: the coordinator runs it elsewhere
    return f"{arg} on {args.id}"


@w.task("reverse")
def reverse(arg: str) -> str:
    return arg[::-1]


w.run()
