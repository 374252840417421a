"""A full disk, a quota or a read-only file system under the experiment: the run stops at the first trial that hits
one, as Ctrl-C stops it (Ray saves its state, every trial stays resumable), instead of retrying trials that cannot
write and ending them as failed. `run_stopped` says so in one line, and the same command resumes.

callbacks.StopOnStorageFault (a Tune callback) reports each trial error here; this module keeps what it saw."""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from tuner import storage
from tuner.errors import STORAGE_ERRNOS, StorageFault, storage_reason_in_text
from tuner.spec import ExperimentSpec

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


def run_stopped(spec: ExperimentSpec, directory: str, fault: dict[str, str]) -> StorageFault:
    """One line for a run that a full disk (a quota, a read-only file system) stopped: where, how much room the rest
    of the run needs (estimated from what each recorded epoch took so far), and that the same command resumes."""
    where = f"{spec.storage}: {fault['reason']} (trial {fault['trial']} could not write)"
    resume = "then run the same command again: it resumes where it stopped, with every record kept"
    if fault["reason"] == STORAGE_ERRNOS[errno.EROFS]:
        return StorageFault(f"{where}; make it writable, {resume}")
    from tuner.experiment import records as records_module

    free, used = storage.free_bytes(directory), storage.folder_size(directory)
    epochs = len(records_module.load(directory))
    left = spec.trial_count() * spec.fixed.epochs - epochs
    need = f"; the rest of the run needs up to about {_size(used / max(epochs, 1) * left)}" if left > 0 else ""
    room = f"; {_size(free)} free" if free is not None else ""
    return StorageFault(f"{where}{room}{need}; free space, {resume}")


def _size(count: float) -> str:
    unit = "bytes"
    for larger in ("KiB", "MiB", "GiB"):
        if count < 1024:
            break
        count, unit = count / 1024, larger
    return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
