"""The best finished trial of an experiment: as Hyperparameters (for `base:`) or as a spec (`tuner best`)."""

from __future__ import annotations

import pandas as pd
import yaml

from tuner import records as records_module
from tuner.errors import SpecError
from tuner.experiment import load_saved_spec, resolve
from tuner.hyperparameters import Hyperparameters
from tuner.spec import ExperimentSpec
from tuner.summarize import hyperparameters_of, trial_table


def best_trial(directory: str) -> tuple[ExperimentSpec, pd.Series, Hyperparameters]:
    spec = load_saved_spec(directory)
    trials = trial_table(records_module.load(directory), spec.metric, spec.mode)
    finished = trials[trials["stop_reason"] == "finished"] if not trials.empty else trials
    if finished.empty:
        raise SpecError(f"{directory}: no finished trial to take a configuration from")
    best = finished.iloc[0]
    return spec, best, hyperparameters_of(best)


def best_spec_yaml(experiment: str, storage: str) -> str:
    spec, best, hp = best_trial(resolve(experiment, storage))
    document = spec.model_dump(
        mode="json", exclude={"params", "search", "scheduler", "storage", "seeds", "base", "baselines"}
    )
    document["name"] = f"{spec.name}-best"
    document["fixed"] = hp.model_dump(mode="json")
    header = (
        f"# best finished trial {best['trial_id']} of {spec.name}: {spec.metric} = {best[spec.metric]:.6f} "
        f"at epoch {best['best_epoch']}; test/recall@{hp.k[-1]} there = {best[f'test/recall@{hp.k[-1]}']:.6f}\n"
        f"# run it again with: tuner train <this file> --threads 1\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def with_base(spec: ExperimentSpec, directory: str) -> ExperimentSpec:
    """`fixed` completed from the best finished trial of the base experiment at `directory`: explicitly
    fixed values win, searched names (and the seed, with `seeds`) stay searched."""
    _, _, base = best_trial(directory)
    skip = set(spec.searched()) | set(spec.fixed.model_fields_set)
    inherited = {k: v for k, v in base.model_dump().items() if k not in skip}
    fixed = Hyperparameters.model_validate({**inherited, **spec.fixed.model_dump(exclude_unset=True)})
    return spec.model_copy(update={"fixed": fixed})
