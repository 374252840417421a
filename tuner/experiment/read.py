"""The one read model of an experiment folder: `Experiment.open(path)`.

`tuner best`, `tuner records`, `tuner report` and `tuner run`'s summary all read an experiment through it, so they
agree on its trials, their stop reasons and which one is best. Each part is read when first asked for, then kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from tuner.errors import ExperimentError
from tuner.experiment import baselines, layout, per_user, provenance, records
from tuner.experiment.trials import failed_trial_errors, hyperparameters_of, stop_reason_counts, trial_table
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.spec import ExperimentSpec
from tuner.vocabulary import Column, StopReason


@dataclass
class Experiment:
    directory: str
    spec: ExperimentSpec

    @classmethod
    def open(cls, directory: str) -> Experiment:
        """The experiment at `directory` (a folder or URI): SpecError when it holds no tuner experiment."""
        return cls(directory, layout.load_saved_spec(directory))

    @cached_property
    def records(self) -> pd.DataFrame:
        """One row per (trial, epoch); `attrs["unreadable"]` lists record files that could not be read."""
        return records.load(self.directory)

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial at its best-validation epoch, best first (experiment.trials.trial_table)."""
        return trial_table(self.records, self.spec.metric, self.spec.mode)

    @cached_property
    def errors(self) -> dict[str, str]:
        """trial id -> the error that ended it, for the trials that failed for good."""
        return failed_trial_errors(self.trials, layout.trial_errors(self.directory))

    @cached_property
    def counts(self) -> dict[str, int]:
        """Trials per stop reason, `running` included; failed counts trials that failed before any record."""
        return stop_reason_counts(self.trials, self.errors)

    @cached_property
    def per_user(self) -> pd.DataFrame:
        return per_user.load(self.directory)

    @cached_property
    def baselines(self) -> pd.DataFrame:
        return baselines.load(self.directory)

    @cached_property
    def provenance(self) -> dict:
        return provenance.load(self.directory)

    @cached_property
    def trial_resources(self) -> dict[str, float]:
        return provenance.trial_resources(self.directory, self.spec)

    @cached_property
    def manifests(self) -> list[dict]:
        return provenance.trial_manifests(self.directory)

    def finished_trials(self) -> pd.DataFrame:
        """The trials that trained every epoch, best first."""
        return self.trials[self.trials[Column.STOP_REASON] == StopReason.FINISHED] if not self.trials.empty else self.trials

    def best_trial(self) -> pd.Series:
        """The best finished trial (an early-stopped one is never taken for the best): its row in `trials`."""
        finished = self.finished_trials()
        if finished.empty:
            raise ExperimentError(f"{self.directory}: no finished trial to take a configuration from")
        return finished.iloc[0]

    def best_hyperparameters(self) -> Hyperparameters:
        return hyperparameters_of(self.best_trial())
