"""Baselines on an experiment's own split, for the report: MostPop, and a rank-8 MF per seed.

Written once per experiment to <experiment>/baselines.parquet: one row per (baseline, seed) with the metrics
at the baseline's best-validation epoch, in the same columns as the records. `tuner run` computes each row as a
Ray task alongside the trials (search.start_baselines); this module only knows how to compute and store them.
"""

from __future__ import annotations

import io

import pandas as pd

from tuner import storage
from tuner.data import SplitData
from tuner.hyperparameters import Hyperparameters
from tuner.spec import ExperimentSpec

BASELINES_FILE = "baselines.parquet"
MF_RANK = 8
# The MF baseline's own training, whatever the experiment trains with (an ablation's lr, epochs or weight decay
# could leave it below MostPop): one triple per training edge, 50 epochs, selected on validation every 5.
MF_TRAINING = {"embedding_dim": MF_RANK, "lr": 0.005, "weight_decay": 1e-4, "regularization": "embedding_l2",
               "samples_per_user": None, "batch_size": 1024, "epochs": 50, "eval_every": 5}


def needed(spec: ExperimentSpec, directory: str) -> list[tuple[str, int | None]]:
    """The (baseline, seed) rows still to compute: none once baselines.parquet exists."""
    if not spec.baselines or storage.is_file(storage.join(directory, BASELINES_FILE)):
        return []
    rows = [("mostpop", None)] if "mostpop" in spec.baselines else []
    if "mf" in spec.baselines:
        rows += [("mf", seed) for seed in spec.seeds or [spec.fixed.seed]]
    return rows


def compute(spec: ExperimentSpec, data: SplitData, baseline: str, seed: int | None) -> dict:
    """One baseline row: MostPop's metrics, or a rank-8 MF's (trained with MF_TRAINING) at its best-validation
    epoch."""
    import torch

    from tuner.metrics import Evaluator, popularity_scores
    from tuner.models import build_model
    from tuner.training import Trainer, best_epoch

    if baseline == "mostpop":
        metrics = Evaluator(data, spec.fixed.k).evaluate(popularity_scores(data))
        return {"baseline": "mostpop", "seed": None, "epoch": None, **metrics}
    hp = Hyperparameters(**MF_TRAINING, seed=seed, k=spec.fixed.k)
    torch.manual_seed(seed)
    model = build_model("mf", data.num_users, data.num_items, torch.tensor(data.train), **hp.model_dump())
    best = best_epoch(list(Trainer(model, data, hp).run()), spec.metric, spec.mode)
    return {"baseline": f"mf (rank {MF_RANK})", "seed": seed, "epoch": best.epoch, **best.metrics}


def write(directory: str, rows: list[dict]) -> None:
    storage.write_bytes(storage.join(directory, BASELINES_FILE), pd.DataFrame(rows).to_parquet(index=False))


def load_baselines(directory: str) -> pd.DataFrame:
    path = storage.join(directory, BASELINES_FILE)
    return pd.read_parquet(io.BytesIO(storage.read_bytes(path))) if storage.is_file(path) else pd.DataFrame()
