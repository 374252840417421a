"""The live search: Ray Tune's OptunaSearch, told what tuner's records say, and the Optuna sampler a spec asks for."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import optuna
from ray.tune.search.optuna import OptunaSearch

from tuner.experiment.study_export import STUDY_STATES
from tuner.spec import ExperimentSpec
from tuner.vocabulary import PRODUCED_METRICS, Column, Objective, StopReason, decode_param, how_it_ended, param_column

if TYPE_CHECKING:
    import pandas as pd


class EpochOptunaSearch(OptunaSearch):
    """OptunaSearch, told what each trial's records say (so the live study is the one tuner exports to optuna.db):

    - intermediate values are indexed by epoch (not Tune's report count), and an epoch a resumed trial runs again
      is told once;
    - a trial that trained every epoch (or collapsed) is COMPLETE with its best validation value — the epoch tuner
      returns — not the value of its last epoch;
    - a trial the scheduler stopped is PRUNED, with its intermediate values (OptunaSearch tells it COMPLETE with
      its partial value, so TPE would take a 15-epoch value for a finished result; PRUNED is what Optuna's own
      pruning tells, and TPE ranks pruned trials below finished ones, deeper ones first);
    - a diverged trial, and an errored one even when it had reported results, is FAILED.

    FAILED and PRUNED go through OptunaSearch's own completion with no result, which tells Optuna inside its guard:
    a sampler that raises while being told (GridSampler calls study.stop() after the last grid point, which raises
    outside an objective) must not crash the run or leave the trial to be told twice.

    `--restart-errored` makes Ray restart an errored trial under a new id that this searcher never suggested
    (OptunaSearch would raise KeyError on its results): those trials are left out of the live study — the
    exported optuna.db, rebuilt from the records, has them."""

    def __init__(self, *args, epochs: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._epochs = epochs  # what a trial that trains to the end reaches
        self._suggested: set[str] | None = set()  # None: not known (a state saved by a tuner that did not keep it)
        self._last_epoch_told: dict[str, int] = {}
        self._best_told: dict[str, float] = {}

    def suggest(self, trial_id: str):
        suggestion = super().suggest(trial_id)
        if isinstance(suggestion, dict) and self._suggested is not None:
            self._suggested.add(trial_id)
        return suggestion

    def restore(self, checkpoint_path: str) -> None:
        epochs = self._epochs
        self._suggested, self._last_epoch_told, self._best_told = None, {}, {}
        super().restore(checkpoint_path)  # sets them, unless the state was saved before tuner kept them
        self._epochs = epochs

    @property
    def study(self) -> optuna.Study | None:
        """The live study: what Optuna has been told so far (after `restore`, what the saved search had been told;
        None before a search space is set).
        OptunaSearch keeps it as `_ot_study` and offers no accessor; this is the one place tuner reads it."""
        return self._ot_study

    def _told_as(self, result: dict | None, error: bool = False) -> optuna.trial.TrialState:
        return STUDY_STATES[how_it_ended(result, self._epochs, errored=error)]

    def _suggested_it(self, trial_id: str) -> bool:
        return self._suggested is None or trial_id in self._suggested

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._told_as(result) == optuna.trial.TrialState.FAIL or not self._suggested_it(trial_id):
            return  # a failed or diverged trial's last report carries the worst value, not a measured one
        if result[Column.EPOCH] <= self._last_epoch_told.get(trial_id, 0):
            return  # a trial resumed from its checkpoint runs the epochs after it again: Optuna has them (and warns)
        self._last_epoch_told[trial_id] = result[Column.EPOCH]
        value = result[self.metric]
        if trial_id not in self._best_told or Objective(self.metric, self.mode).better(value, self._best_told[trial_id]):
            self._best_told[trial_id] = value
        super().on_trial_result(trial_id, {**result, "training_iteration": result[Column.EPOCH]})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not self._suggested_it(trial_id):
            return
        state = self._told_as(result, error)
        if state == optuna.trial.TrialState.FAIL:
            super().on_trial_complete(trial_id, result=None, error=True)
            return
        if result is not None:
            self.on_trial_result(trial_id, result)  # the result the scheduler stopped the trial at is not told before
        if state == optuna.trial.TrialState.PRUNED or result is None:
            super().on_trial_complete(trial_id, result=None)
        else:
            best = self._best_told.get(trial_id, result[self.metric])  # a state saved before tuner kept it: the last
            super().on_trial_complete(trial_id, {**result, self.metric: best})


def optuna_sampler(spec: ExperimentSpec) -> optuna.samplers.BaseSampler:
    search = spec.search
    if search.sampler == "tpe":
        startup = min(10, max(2, search.num_samples // 3))
        # constant liar: running trials count as bad, so parallel trials do not all probe the same spot
        return optuna.samplers.TPESampler(seed=search.seed, constant_liar=True, n_startup_trials=startup)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=search.seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=search.seed)
    grid = {name: param.grid_values() for name, param in spec.searched().items()}
    return AskAndTellGridSampler(grid, seed=search.seed)


class AskAndTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, told by Ray Tune. Once the grid is done, GridSampler stops the study's optimize loop
    (`Study.stop`); Tune asks and tells without such a loop, so Study.stop raises and OptunaSearch logged its error
    as a warning at the end of every grid search. Tune itself stops after `num_samples` trials: nothing to stop."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def tell_earlier_trials(searcher: EpochOptunaSearch, spec: ExperimentSpec, earlier: pd.DataFrame) -> None:
    """What the searcher learnt in the experiment's earlier runs, told as the live search told it: a finished or
    collapsed trial COMPLETE with its best validation value, an early-stopped one PRUNED, the others FAILED. (A
    pruned trial told here has no intermediate values — OptunaSearch indexes them by report count, not epoch — so
    TPE ranks it after this run's pruned trials.)"""
    for _, trial in earlier.sort_values([Column.TRIAL_STARTED, Column.TRIAL_ID]).iterrows():
        params = {name: decode_param(name, trial[param_column(name)]) for name in spec.searched()}
        value = trial.get(spec.metric)
        usable = trial[Column.STOP_REASON] in PRODUCED_METRICS and isinstance(value, float) and math.isfinite(value)
        searcher.add_evaluated_point(params, float(value) if usable else 0.0, error=not usable,
                                     pruned=usable and trial[Column.STOP_REASON] == StopReason.EARLY_STOPPED.value)


