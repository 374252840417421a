"""Ray Tune callbacks of a run: each trial's records ended the moment Ray ends it, and a full disk stopping the run
(tuning.progress.ProgressLines prints the progress lines; tuning.mlflow_logging logs every trial to MLflow)."""

from __future__ import annotations

import math
import warnings

from ray import tune

from tuner.experiment.records import RecordWriter
from tuner.tuning import storage_faults
from tuner.vocabulary import StopReason, how_it_ended


class RecordStopReasons(tune.Callback):
    """Ends a trial's records the moment Ray ends the trial, with how it ended (vocabulary.how_it_ended: the
    trainable has written finished, diverged and collapsed already; a trial the scheduler stopped gets
    `early_stopped`, one that failed for good `failed`), and compacts every ended trial's epochs. So an
    interrupted run's records already tell stopped trials from unfinished ones."""

    epochs: float = math.inf  # a callback restored from a run saved before it knew the epochs: never "finished"

    def __init__(self, experiment_dir: str, ks: tuple[int, ...], epochs: int):
        self.experiment_dir, self.ks, self.epochs = experiment_dir, ks, epochs

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._end(trial.trial_id, how_it_ended(trial.last_result, self.epochs))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._end(trial.trial_id, how_it_ended(trial.last_result, self.epochs, errored=True))

    def _end(self, trial_id: str, stop_reason: StopReason) -> None:
        try:
            RecordWriter(self.experiment_dir, trial_id, self.ks).end(stop_reason)
        except (OSError, ValueError) as exc:  # never fail the trial over this: experiment.settle ends it later
            warnings.warn(f"trial {trial_id}: its records could not be ended now ({exc}); the run's end will do it", stacklevel=1)


class StopOnStorageFault(tune.Callback):
    """Every trial error, retried or final, goes to storage_faults.notice: a full disk stops the run."""

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        storage_faults.notice(trial.trial_id, trial.error_file)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        storage_faults.notice(trial.trial_id, trial.error_file)


def __getattr__(name: str):
    """MetricNamesForMLflow, for Ray's saved state (tuner.pkl) of a run begun while it lived here: imported on demand,
    since importing it imports MLflow."""
    if name == "MetricNamesForMLflow":
        from tuner.tuning.mlflow_logging import MetricNamesForMLflow

        return MetricNamesForMLflow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
