"""What `tuner run` prints while trials run: one line per trial that ends, with its best validation value, the
best of the run so far, its configuration and an estimate of the time left. Tune itself runs silent (verbose=0):
every trial's records, Tune's results and the trial's own output are in the experiment folder."""

from __future__ import annotations

import math
import posixpath
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ray import tune

from tuner.recsys.selection import BestEpoch
from tuner.vocabulary import ERROR_FILE, Column, Objective, StopReason, how_it_ended


@dataclass
class Tally:
    """The run's ended trials, for the progress lines (pure: tested without Ray)."""

    metric: str
    mode: str
    expected: int  # trials in the experiment
    ended_before: int = 0  # of them, ended by an earlier run (a resume)
    started: float = field(default_factory=time.time)
    ended: int = 0  # in this run
    best: dict[str, BestEpoch] = field(default_factory=dict)  # per trial
    overall: tuple[float, str] | None = None  # the best value of any finished trial, and that trial
    epochs: int = 0  # a trial's epoch budget (0: unknown)
    concurrency: int = 1  # the most trials seen running at once
    progress: dict[str, tuple[int, float]] = field(default_factory=dict)  # trial -> (epochs run, its seconds so far)
    ended_ids: set[str] = field(default_factory=set)  # the trials that ended in this run

    def offer(self, trial_id: str, result: dict) -> None:
        """A result Tune received (an evaluated epoch)."""
        epoch, seconds = result.get(Column.EPOCH), result.get("time_total_s")  # Tune adds the trial's seconds so far
        if isinstance(epoch, int) and isinstance(seconds, (int, float)):
            self.progress[trial_id] = (epoch, float(seconds))
        value = result.get(self.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):  # a failed or diverged end: the worst value
            return
        users = result.get(Objective(self.metric, self.mode).users, 1.0)
        self.best.setdefault(trial_id, BestEpoch(self.mode)).offer(int(result.get(Column.EPOCH, 0)), float(value), users)

    def line(self, trial_id: str, how: StopReason, config: dict, now: float | None = None) -> str:
        """The line for a trial that has just ended `how`."""
        self.ended += 1
        self.ended_ids.add(trial_id)
        best = self.best.get(trial_id)
        value = "-"
        if best is not None and best.value is not None:
            value = f"{best.value:.4f} at epoch {best.epoch}"
            if how == StopReason.FINISHED and (self.overall is None or (
                    Objective(self.metric, self.mode).better(best.value, self.overall[0]))):
                self.overall = (best.value, trial_id)
        overall = f"run's best {self.overall[0]:.4f} ({self.overall[1]})" if self.overall else "none finished yet"
        params = " ".join(f"{name}={_plain(v)}" for name, v in sorted(config.items()))
        done = self.ended_before + self.ended
        return (f"[{done}/{self.expected}] {trial_id} {how.value.replace('_', '-')}: {self.metric} {value}; {overall}"
                f"{self._eta(now or time.time())}; {params}")

    def _eta(self, now: float) -> str:
        """From the epochs measured so far: the epochs left (the running trials' rest, and a whole trial for each
        one not started; with early stopping, as many epochs as the trials that ended ran on average) times the
        seconds an epoch took, shared among the trials that run at once. Without timings yet: wall time per ended
        trial."""
        left = self.expected - self.ended_before - self.ended
        if left <= 0:
            return ""
        epochs_seen = sum(epochs for epochs, _ in self.progress.values())
        if not self.epochs or not epochs_seen:
            return f"; about {_duration((now - self.started) / self.ended * left)} left"
        per_epoch = sum(seconds for _, seconds in self.progress.values()) / epochs_seen
        ended = [self.progress[t][0] for t in self.ended_ids if t in self.progress]
        per_trial = sum(ended) / len(ended) if ended else self.epochs
        running = [epochs for t, (epochs, _) in self.progress.items() if t not in self.ended_ids]
        epochs_left = sum(max(per_trial - epochs, 0) for epochs in running) + max(left - len(running), 0) * per_trial
        return f"; about {_duration(epochs_left * per_epoch / max(1, min(self.concurrency, left)))} left"


class ProgressLines(tune.Callback):
    """Tune callback printing Tally's lines. Its state starts afresh with every run, resumes included (Tune
    restores callbacks from the experiment's saved state and calls `setup` again)."""

    def __init__(self, metric: str, mode: str, expected: int, epochs: int, out: TextIO | None = None, earlier: int = 0):
        """`earlier`: trials the experiment ran in runs before this Tune run (it is being extended)."""
        self.metric, self.mode, self.expected, self.epochs, self.out = metric, mode, expected, epochs, out
        self.earlier = earlier
        self.tally: Tally | None = None

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.tally = None

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.tally is None:  # the run's first step: the trials that have ended already are a resume's
            ended = sum(1 for trial in trials if trial.status in ("TERMINATED", "ERROR"))
            self.tally = Tally(self.metric, self.mode, self.expected, ended_before=self.earlier + ended,
                               epochs=self.epochs)
        running = sum(1 for trial in trials if trial.status == "RUNNING")
        self.tally.concurrency = max(self.tally.concurrency, running)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.tally is not None:
            self.tally.offer(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._print(trial, how_it_ended(trial.last_result, self.epochs))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._print(trial, how_it_ended(trial.last_result, self.epochs, errored=True),
                    f" ({_error_of(trial)}; {_error_path(trial)} has the whole traceback)")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """A failed attempt that Ray retries: one line (Ray's own traceback is left out, see search.fit)."""
        print(f"trial {trial.trial_id} failed ({_error_of(trial)}); retrying it from its last checkpoint "
              f"({_error_path(trial)} has the whole traceback)", file=self.out or sys.stdout, flush=True)

    def _print(self, trial, how: StopReason, note: str = "") -> None:
        if self.tally is not None:
            print(self.tally.line(trial.trial_id, how, trial.config) + note, file=self.out or sys.stdout, flush=True)


def _error_of(trial) -> str:
    """The last line of the trial's error.txt (the exception and its message), or why there is none."""
    try:
        lines = [line for line in Path(trial.error_file).read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, TypeError):
        return "its error could not be read"
    return lines[-1][:300] if lines else "no error message"


def _error_path(trial) -> str:
    """Where the user finds the trial's error: <experiment>/<trial id>/error.txt (Ray copies it there)."""
    return posixpath.join(trial.path, ERROR_FILE) if getattr(trial, "path", None) else "its error.txt"


def _plain(value) -> str:
    if value is None:
        return "null"  # as the spec writes it (samples_per_user: null is one triple per training edge)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
