"""tuner: hyperparameter tuning for graph-neural-network recommenders.

The public API, imported on first use (so that `import tuner` stays light):

    from tuner import load_spec, run_experiment, Experiment, write_report
    spec = load_spec("search_spaces/lightgcn.yaml", ["search.num_samples=8"])
    summary = run_experiment(spec)                      # Ray Tune + Optuna; resumes an existing experiment
    experiment = Experiment.open(summary.experiment_dir)
    experiment.best_trial(); write_report(experiment)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_spec": "tuner.spec_loader",
    "Recommender": "tuner.recsys.models.base",
    "ExperimentSpec": "tuner.spec",
    "run_experiment": "tuner.tuning.run",
    "Experiment": "tuner.experiment.read",
    "write_report": "tuner.analysis.report",
    "train": "tuner.train_command",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
