"""`tuner best`: the best finished trial of an experiment as a spec that `tuner train` runs to the same numbers."""

from __future__ import annotations

import yaml

from tuner.experiment.read import Experiment
from tuner.vocabulary import Column, metric_key


def best_spec_yaml(experiment: Experiment) -> str:
    spec, best, hp = experiment.spec, experiment.best_trial(), experiment.best_hyperparameters()
    document = spec.model_dump(
        mode="json", exclude={"params", "search", "scheduler", "storage", "seeds", "base", "baselines"}
    )
    document["name"] = f"{spec.name}-best"
    document["fixed"] = hp.model_dump(mode="json")
    recall = metric_key("test", "recall", hp.k[-1])
    header = (
        f"# best finished trial {best[Column.TRIAL_ID]} of {spec.name}: {spec.metric} = {best[spec.metric]:.6f} "
        f"at epoch {best[Column.BEST_EPOCH]}; {recall} there = {best[recall]:.6f}\n"
        f"# run it again with: tuner train <this file> {_as_the_trial_ran(experiment, best)}\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def _as_the_trial_ran(experiment: Experiment, best) -> str:
    """`tuner train`'s options that run the trial as it ran: on its GPU, or with its threads (a trial's torch
    threads are its CPUs; another thread count changes the last digits)."""
    if str(best.get(Column.DEVICE, "cpu")).startswith("cuda"):
        return "--device cuda"
    return f"--threads {max(1, int(experiment.trial_resources['cpu']))}"
