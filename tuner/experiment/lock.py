"""One `tuner run` at a time per experiment: `<storage>/<name>.lock`, beside the experiment's folder (so `--fresh`
can delete the folder without losing it).

The lock file says who holds it (host, pid, since) and when it was last seen: the holder refreshes that heartbeat
every HEARTBEAT seconds. A lock whose holder is gone is taken over — on the same host at once when its process no
longer exists (a crashed or killed run), from another host (a cluster job, a shared file system) once it has not
been seen for STALE_AFTER seconds. Object stores have no atomic create-if-absent, so two runs starting within the
same second could both pass; every later start is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid

from tuner import storage
from tuner.errors import ExperimentError, StorageError, one_line

HEARTBEAT = 30.0
STALE_AFTER = 120.0


class ExperimentLock:
    def __init__(self, location: str, name: str):
        self.path = storage.join(location, f"{name}.lock")
        self.name = name
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._notes: dict = {}
        self.taken_over: dict | None = None  # what the lock said of a dead holder on this host, when it was taken over

    def __enter__(self) -> "ExperimentLock":
        holder = self._read()
        if holder is not None and _alive(holder):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
            raise ExperimentError(
                f"{self.path}: experiment {self.name} is being run by pid {holder['pid']} on {holder['host']} since "
                f"{since} (seen {time.time() - holder['seen']:.0f} s ago); wait for that run to end or stop it"
            )
        if holder is not None and holder.get("host") == socket.gethostname():
            self.taken_over = holder
        self.since = time.time()
        try:
            self._write()
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot be written ({one_line(exc)}); expected a writable storage "
                               "folder") from None
        self._heartbeat = threading.Thread(target=self._beat, name="experiment-lock", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        holder = self._read()
        if holder is not None and holder.get("token") == self.token:
            with contextlib.suppress(OSError):  # a storage gone read-only: the next run takes the lock over
                storage.remove_file(self.path)

    def note(self, **fields) -> None:
        """Add `fields` to what the lock says of this run (the next run reads them in `taken_over` if this one dies)."""
        self._notes.update(fields)
        with contextlib.suppress(OSError):  # the heartbeat writes them again
            self._write()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                self._write()
            except OSError:
                pass  # storage briefly unreachable: the next beat tries again

    def _write(self) -> None:
        record = {**self._notes, "host": socket.gethostname(), "pid": os.getpid(), "since": self.since,
                  "seen": time.time(), "token": self.token}
        storage.write_text(self.path, json.dumps(record))

    def _read(self) -> dict | None:
        if not storage.is_file(self.path):
            return None
        try:
            return json.loads(storage.read_text(self.path))
        except (ValueError, OSError):
            return None  # half a lock (a crash while writing it): nobody holds it


def _alive(holder: dict) -> bool:
    if time.time() - holder.get("seen", 0) > STALE_AFTER:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
