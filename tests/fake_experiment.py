"""Fake experiment folders with chosen numbers, for report tests and the report benchmark."""

import os

import numpy as np
import pandas as pd

from tuner.experiment import per_user, records
from tuner.experiment.layout import save_spec
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.spec import validate_spec
from tuner.vocabulary import BASELINES_FILE, metric_columns

K = 10


def ablation_spec(directory, values=(0.0, 0.1), seeds=(0, 1), factor="weight_decay"):
    spec = validate_spec(
        {
            "name": os.path.basename(directory),
            "model": "lightgcn",
            "dataset": {"name": "synthetic"},
            "metric": f"val/recall@{K}",
            "fixed": {"k": [K], "epochs": 2, "eval_every": 1},
            "params": {factor: {"type": "categorical", "choices": list(values)}},
            "seeds": list(seeds),
            "baselines": ["mostpop"],
            "search": {"sampler": "grid"},
            "storage": os.path.dirname(directory),
        },
        "fake",
    )
    save_spec(directory, spec)
    return spec


def write_trial(directory, trial_id, hp: Hyperparameters, epochs_metrics, stop_reason="finished", device="cpu"):
    """epochs_metrics: one dict per epoch, e.g. {"val/recall@10": 0.2, "test/recall@10": 0.3}; missing metrics
    default to 0.1. The trial is a LightGCN's: its own hyperparameters default as LightGCN's do."""
    hp = hp.model_copy(update={"embedding_dim": 64, "num_layers": 3, **hp.model_values()})
    writer = records.RecordWriter(directory, trial_id, [K], {name: type(v) for name, v in hp.model_values().items()})
    identity = records.TrialIdentity(experiment="fake", trial_id=trial_id, attempt=1, model="lightgcn",
                                     dataset="synthetic", split_hash="abc", seed=hp.seed, device=device,
                                     trial_started=float(hash(trial_id) % 1000), params=records.param_values(hp))
    for epoch, metrics in enumerate(epochs_metrics, start=1):
        last = epoch == len(epochs_metrics)
        writer.write(records.EpochRecord(
            identity, epoch=epoch, status="ended" if last else "running", stop_reason=stop_reason if last else None,
            loss=1.0 / epoch, bpr_loss=1.0 / epoch, epoch_seconds=1.0, sample_seconds=0.1, eval_seconds=0.1,
            cumulative_seconds=float(epoch), evaluated=metrics is not None,
            metrics={} if metrics is None else {**{name: 0.1 for name in metric_columns([K])}, **metrics},
        ))


def write_baselines(directory, mostpop_metrics):
    row = {"baseline": "mostpop", "seed": None, "epoch": None, **{n: 0.05 for n in metric_columns([K])}}
    row.update(mostpop_metrics)
    pd.DataFrame([row]).to_parquet(os.path.join(directory, BASELINES_FILE), index=False)


def write_per_user(directory, trial_id, recalls):
    users = np.arange(len(recalls))
    per_user.write(directory, trial_id, 1, users, {f"recall@{K}": np.asarray(recalls, dtype=float)})
