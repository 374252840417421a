"""Baselines on an experiment's own split, for the report: MostPop, and a rank-8 MF per seed.

Written once per experiment to <experiment>/baselines.parquet: one row per (baseline, seed) with the metrics
at the baseline's best-validation epoch, in the same columns as the records.
"""

from __future__ import annotations

import io

import pandas as pd
import torch

from tuner import storage
from tuner.data import SplitData
from tuner.metrics import Evaluator, popularity_scores
from tuner.models import build_model
from tuner.spec import ExperimentSpec
from tuner.training import Trainer, best_epoch

BASELINES_FILE = "baselines.parquet"
MF_RANK = 8


def compute_baselines(spec: ExperimentSpec, data: SplitData, directory: str) -> None:
    path = storage.join(directory, BASELINES_FILE)
    if not spec.baselines or storage.is_file(path):
        return
    rows = []
    if "mostpop" in spec.baselines:
        metrics = Evaluator(data, spec.fixed.k).evaluate(popularity_scores(data))
        rows.append({"baseline": "mostpop", "seed": None, "epoch": None, **metrics})
    if "mf" in spec.baselines:
        for seed in spec.seeds or [spec.fixed.seed]:
            hp = spec.fixed.model_copy(update={"embedding_dim": MF_RANK, "seed": seed})
            torch.manual_seed(seed)
            model = build_model("mf", data.num_users, data.num_items, torch.tensor(data.train), **hp.model_dump())
            best = best_epoch(list(Trainer(model, data, hp).run()), spec.metric, spec.mode)
            rows.append({"baseline": f"mf (rank {MF_RANK})", "seed": seed, "epoch": best.epoch, **best.metrics})
    storage.write_bytes(path, pd.DataFrame(rows).to_parquet(index=False))


def load_baselines(directory: str) -> pd.DataFrame:
    path = storage.join(directory, BASELINES_FILE)
    return pd.read_parquet(io.BytesIO(storage.read_bytes(path))) if storage.is_file(path) else pd.DataFrame()
