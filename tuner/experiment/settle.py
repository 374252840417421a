"""How a run ends, whatever ended it: every trial Ray ended gets its stop reason in the records, ended trials keep
their newest checkpoint, the Optuna study is exported from the records, and the run is summed up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuner import storage
from tuner.experiment import records as records_module
from tuner.experiment.read import Experiment
from tuner.experiment.set_aside import prune_checkpoints
from tuner.experiment.study_export import export_study
from tuner.spec import ExperimentSpec
from tuner.vocabulary import RUNNING, STUDY_FILE, Column, StopReason

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunSummary:
    experiment: Experiment  # the experiment as it stands now, read once the run has settled
    expected_trials: int
    study_path: str | None

    @property
    def spec(self) -> ExperimentSpec:
        return self.experiment.spec

    @property
    def experiment_dir(self) -> str:
        return self.experiment.directory

    @property
    def trials(self) -> pd.DataFrame:
        return self.experiment.trials

    @property
    def counts(self) -> dict[str, int]:
        return self.experiment.counts

    @property
    def errors(self) -> dict[str, str]:
        """trial id -> the error that ended it, for the trials that failed for good."""
        return self.experiment.errors

    @property
    def interrupted(self) -> bool:
        ended = sum(v for k, v in self.counts.items() if k != RUNNING)
        return ended < self.expected_trials

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.counts[StopReason.FAILED] or self.counts[StopReason.DIVERGED] else 0


def settle(spec: ExperimentSpec, directory: str, statuses: dict[str, str], expected_trials: int,
           rewrite_study: bool = True) -> RunSummary:
    """Write the stop reason of every trial that ended without one (early-stopped or failed), export the study
    (every time something ran, even when no trial got as far as a record; else only when it is missing), then
    summarise.

    `statuses` are Ray's final trial states: TERMINATED (ended normally), ERROR (retries exhausted), or
    anything else (still pending or running: the run was interrupted).
    """
    records = records_module.load(directory)
    if not records.empty:
        for trial_id, trial in records.groupby(Column.TRIAL_ID):
            last = trial.loc[trial[Column.EPOCH].idxmax()]
            status = statuses.get(trial_id)
            if not isinstance(last[Column.STOP_REASON], str) and status in ("TERMINATED", "ERROR"):
                writer = records_module.RecordWriter(directory, trial_id, spec.fixed.k)
                writer.end(StopReason.FAILED if status == "ERROR" else StopReason.EARLY_STOPPED)
    experiment = Experiment(directory, spec)
    prune_checkpoints(directory, [t for t, status in statuses.items() if status == "TERMINATED"])
    study_path = storage.join(directory, STUDY_FILE)
    if rewrite_study or not storage.is_file(study_path):
        export_study(spec, experiment.records, experiment.trials, directory)
    return RunSummary(experiment, expected_trials, study_path)
