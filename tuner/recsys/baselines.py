"""Baselines on a split: MostPop, and a rank-8 matrix factorisation trained with its own sensible settings.

A row holds the metrics at the baseline's best-validation epoch, in the same keys as an evaluated epoch.
"""

from __future__ import annotations

from typing import Sequence

from tuner.recsys.data import SplitData
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.training import Trainer, best_epoch, build_model_for
from tuner.vocabulary import Column

MF_RANK = 8
# The MF baseline's own training, whatever the experiment trains with (an ablation's lr, epochs or weight decay
# could leave it below MostPop): one triple per training edge, 50 epochs, selected on validation every 5.
MF_TRAINING = {"embedding_dim": MF_RANK, "lr": 0.005, "weight_decay": 1e-4, "regularization": "embedding_l2",
               "samples_per_user": None, "batch_size": 1024, "epochs": 50, "eval_every": 5}


def compute(data: SplitData, baseline: str, seed: int | None, ks: Sequence[int], metric: str, mode: str) -> dict:
    """One baseline row: MostPop's metrics, or a rank-8 MF's (trained with MF_TRAINING, `seed`) at its
    best-validation epoch by `metric`."""
    if baseline == "mostpop":
        metrics = Evaluator(data, ks).evaluate(popularity_scores(data))
        return {Column.BASELINE: "mostpop", Column.SEED: None, Column.EPOCH: None, **metrics}
    hp = Hyperparameters(**MF_TRAINING, seed=seed, k=list(ks))
    best = best_epoch(list(Trainer(build_model_for("mf", data, hp), data, hp).run()), metric, mode)
    return {Column.BASELINE: f"mf (rank {MF_RANK})", Column.SEED: seed, Column.EPOCH: best.epoch, **best.metrics}
