"""Where a run's time goes: when $TUNER_TIMELINE names a file, the driver and every trial append one JSON line per
stage (`{"t": unix seconds, "pid": ..., "event": ..., ...}`) to it. Off (and free) otherwise.

benchmarks/tuning_overhead.py reads it to split a run's fixed cost stage by stage. Lines are appended with one
write(2) each to a file opened O_APPEND, so processes on one machine never interleave within a line.
"""

from __future__ import annotations

import json
import os
import time

ENV = "TUNER_TIMELINE"


def mark(event: str, **fields) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "event": event, **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
