"""A full disk, a quota or a read-only file system under the experiment: the run stops at the first trial that hits
one, as Ctrl-C stops it (Ray saves its state, every trial stays resumable), instead of retrying trials that cannot
write and ending them as failed. `tuning.run` then says so in one line, and the same command resumes.

callbacks.StopOnStorageFault (a Tune callback) reports each trial error here; this module keeps what it saw."""

from __future__ import annotations

import signal
from pathlib import Path

from tuner.errors import storage_reason_in_text

_seen: dict[str, str] = {}  # the fault this driver process saw in its current run: {"trial": id, "reason": ...}


def reset() -> None:
    _seen.clear()


def seen() -> dict[str, str]:
    """{"trial": id, "reason": ...} once a trial of this run hit a storage fault, else empty."""
    return dict(_seen)


def notice(trial_id: str, error_file: str | None) -> None:
    """A trial failed (it may be retried): Ray's error.txt for it, kept on the driver's local disk (so it is there
    when the storage is full), says whether a storage fault did it. The first one stops the run as SIGUSR1 does —
    Ray Tune's equivalent of Ctrl-C: the state is saved, and a retried trial stays pending."""
    if _seen or not error_file:
        return
    try:
        text = Path(error_file).read_text(errors="replace").rsplit("Failure #", 1)[-1]
    except OSError:
        return
    reason = storage_reason_in_text(text)
    if reason is None:
        return
    _seen.update(trial=trial_id, reason=reason)
    stop = signal.getsignal(signal.SIGUSR1)
    if callable(stop):  # Tuner.fit's handler (installed in the main thread)
        stop(signal.SIGUSR1, None)
