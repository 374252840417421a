"""Recommender models, built by name: build_model("lightgcn", num_users, num_items, train, embedding_dim=64)."""

from __future__ import annotations

import inspect

from torch import Tensor

from tuner.errors import SpecError
from tuner.recsys.models.base import Recommender
from tuner.recsys.models.gat import GAT
from tuner.recsys.models.lightgcn import LightGCN
from tuner.recsys.models.mf import MF
from tuner.recsys.models.ngcf import NGCF
from tuner.vocabulary import MODEL_NAMES

MODELS: dict[str, type[Recommender]] = {"mf": MF, "lightgcn": LightGCN, "ngcf": NGCF, "gat": GAT}
assert tuple(MODELS) == MODEL_NAMES


def model_arguments(name: str) -> list[str]:
    """The hyperparameters a model's constructor takes (beyond the graph itself)."""
    skip = {"self", "num_users", "num_items", "train", "adjacency"}
    return [p for p in inspect.signature(model_class(name)).parameters if p not in skip]


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise SpecError(f"model: unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return MODELS[name]


def uses_adjacency(name: str) -> bool:
    """Whether the model propagates over the normalised adjacency (which build_model can be handed, built once)."""
    return "adjacency" in inspect.signature(model_class(name)).parameters


def build_model(
    name: str, num_users: int, num_items: int, train: Tensor, adjacency: Tensor | None = None, **hyperparameters
) -> Recommender:
    """Build a model, passing it the hyperparameters it takes and ignoring the rest (e.g. lr). `adjacency`, the
    training graph's normalised adjacency, saves a graph model from building it again."""
    cls = model_class(name)
    kwargs = {k: v for k, v in hyperparameters.items() if k in model_arguments(name)}
    if "train" in inspect.signature(cls).parameters:
        kwargs["train"] = train
    if adjacency is not None and uses_adjacency(name):
        kwargs["adjacency"] = adjacency
    return cls(num_users, num_items, **kwargs)


__all__ = ["MODELS", "Recommender", "build_model", "model_arguments", "uses_adjacency"]
