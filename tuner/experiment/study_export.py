"""The experiment as an Optuna study in <experiment>/optuna.db, for `optuna-dashboard sqlite:///.../optuna.db`.

Rebuilt from the records (the ground truth, also after resumes): finished trials are COMPLETE with their best
validation value, early-stopped ones PRUNED (valued at their last evaluated epoch, as Optuna's tell values a pruned
trial), failed and diverged ones FAIL; every evaluated epoch is an intermediate value. The live search
(tuning.searcher.EpochOptunaSearch) tells Optuna the same.
"""

from __future__ import annotations

import math
import os
import tempfile

import optuna
import pandas as pd

from tuner import storage
from tuner.search_space import ParamSpec
from tuner.spec import ExperimentSpec
from tuner.vocabulary import STUDY_FILE, Column, StopReason, decode_param, param_column

STUDY_STATES = {  # how a trial ended -> what Optuna is told (live, and in the exported study)
    StopReason.FINISHED: optuna.trial.TrialState.COMPLETE,
    StopReason.EARLY_STOPPED: optuna.trial.TrialState.PRUNED,
    StopReason.FAILED: optuna.trial.TrialState.FAIL,
    StopReason.DIVERGED: optuna.trial.TrialState.FAIL,
    StopReason.COLLAPSED: optuna.trial.TrialState.COMPLETE,  # a measured (poor) value: the search learns from it
}


def optuna_distribution(param: ParamSpec) -> optuna.distributions.BaseDistribution:
    if param.type == "categorical":
        return optuna.distributions.CategoricalDistribution(param.choice_list())
    low, high = param.bounds()
    if param.type == "int":
        return optuna.distributions.IntDistribution(int(low), int(high), log=param.log, step=int(param.step or 1))
    return optuna.distributions.FloatDistribution(low, high, log=param.log, step=param.step)


def export_study(spec: ExperimentSpec, records: pd.DataFrame, trials: pd.DataFrame, directory: str) -> str:
    """Build the study in a local SQLite file, then put it (atomically) into the experiment's storage."""
    path = storage.join(directory, STUDY_FILE)
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, STUDY_FILE)
        build_study(spec, records, trials, optuna_storage=f"sqlite:///{local}")
        with open(local, "rb") as f:
            storage.write_bytes(path, f.read())
    return path


def build_study(
    spec: ExperimentSpec, records: pd.DataFrame, trials: pd.DataFrame, optuna_storage: str | None = None
) -> optuna.Study:
    """An Optuna study holding `trials` (rows of summarize.trial_table), in memory unless `optuna_storage` (an Optuna
    storage URL) is given."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=optuna_storage, study_name=spec.name, direction=spec.objective.direction
    )
    distributions = {name: optuna_distribution(param) for name, param in spec.searched().items()}
    in_start_order = trials.sort_values([Column.TRIAL_STARTED, Column.TRIAL_ID]) if Column.TRIAL_STARTED in trials else trials
    for _, trial in in_start_order.iterrows():  # Optuna numbers trials in the order they are added
        state = STUDY_STATES.get(trial[Column.STOP_REASON])
        if state is None:
            continue  # still running (interrupted): not part of the study yet
        rows = records[(records[Column.TRIAL_ID] == trial[Column.TRIAL_ID]) & records[Column.EVALUATED]]
        intermediate = {int(e): float(v) for e, v in zip(rows[Column.EPOCH], rows[spec.metric]) if math.isfinite(v)}
        value = trial.get(spec.metric)
        complete = state == optuna.trial.TrialState.COMPLETE and value is not None and math.isfinite(value)
        if complete:
            value = float(value)
        elif state == optuna.trial.TrialState.PRUNED and intermediate:
            value = intermediate[max(intermediate)]  # as Optuna's own tell gives a pruned trial: its last value
        else:
            value = None
        study.add_trial(
            optuna.trial.create_trial(
                params={name: decode_param(name, trial[param_column(name)]) for name in distributions},
                distributions=distributions,
                value=value,
                state=state if complete or state != optuna.trial.TrialState.COMPLETE else optuna.trial.TrialState.FAIL,
                intermediate_values=intermediate,
                user_attrs={Column.TRIAL_ID: trial[Column.TRIAL_ID], Column.STOP_REASON: trial[Column.STOP_REASON]},
            )
        )
    return study

