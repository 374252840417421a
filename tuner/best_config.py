"""`tuner best`: the best finished trial of an experiment as a standalone spec for `tuner train`."""

from __future__ import annotations

import yaml

from tuner import records as records_module
from tuner.errors import SpecError
from tuner.experiment import load_saved_spec, resolve
from tuner.summarize import hyperparameters_of, trial_table


def best_spec_yaml(experiment: str, storage: str) -> str:
    directory = resolve(experiment, storage)
    spec = load_saved_spec(directory)
    trials = trial_table(records_module.load(directory), spec.metric, spec.mode)
    finished = trials[trials["stop_reason"] == "finished"] if not trials.empty else trials
    if finished.empty:
        raise SpecError(f"{directory}: no finished trial to take a configuration from")
    best = finished.iloc[0]
    hp = hyperparameters_of(best)
    document = spec.model_dump(mode="json", exclude={"params", "search", "scheduler", "storage"})
    document["name"] = f"{spec.name}-best"
    document["fixed"] = hp.model_dump(mode="json")
    header = (
        f"# best finished trial {best['trial_id']} of {spec.name}: {spec.metric} = {best[spec.metric]:.6f} "
        f"at epoch {best['best_epoch']}; test/recall@{hp.k[-1]} there = {best[f'test/recall@{hp.k[-1]}']:.6f}\n"
        f"# run it again with: tuner train <this file>\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)
