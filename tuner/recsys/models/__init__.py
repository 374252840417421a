"""Recommender models: the contract (`Recommender`), the built-ins, and how a spec's `model:` finds its class."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from tuner.recsys.models.base import Recommender
from tuner.recsys.models.contract import build, complete, graph_inputs, hyperparameter_model
from tuner.recsys.models.registry import ModelSource, locate


def model_class(model: str | type[Recommender]) -> type[Recommender]:
    """A class as it is, or the class a registered name or import path names."""
    return model if isinstance(model, type) else locate(model).load()


def build_model(model: str | type[Recommender], num_users: int, num_items: int, train: Tensor,
                adjacency: Tensor | None = None, **hyperparameters: Any) -> Recommender:
    """Build a model by name or class, passing it the hyperparameters it takes and ignoring the rest (e.g. lr)."""
    return build(model_class(model), num_users, num_items, train, hyperparameters, adjacency)


__all__ = ["ModelSource", "Recommender", "build", "build_model", "complete", "graph_inputs", "hyperparameter_model",
           "locate", "model_class"]
