"""The `dataset:` block of a spec: which dataset, which edges count, how they are split."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuner.recsys.data.sources import DATASETS


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(_Frozen):
    """How edges are divided into train / validation / test.

    `test` is a fraction of all edges (ignored by `given`, which uses the dataset's own test set); `val` is a
    fraction of the edges left after the test edges are taken out, i.e. validation is carved from train.
    """

    kind: Literal["random", "per_user", "temporal", "given"] = "random"
    test: float = Field(0.2, gt=0.0, lt=1.0)
    val: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0


class SyntheticSpec(_Frozen):
    """Size and structure of the `synthetic` dataset (users prefer items of their own cluster)."""

    num_users: int = Field(200, ge=2)
    num_items: int = Field(300, ge=2)
    interactions_per_user: int = Field(20, ge=1)
    clusters: int = Field(4, ge=1)
    in_cluster: float = Field(0.8, ge=0.0, le=1.0)
    seed: int = 0


class DatasetSpec(_Frozen):
    name: str = "movielens-100k"
    path: str | None = None  # a folder holding the raw files; required for lightgcn-format
    rating_threshold: float | None = None
    max_users: int | None = Field(None, ge=1)  # a seeded random subsample of users (seed: split.seed)
    # the k-core: users and items with fewer edges are dropped, repeatedly, before the split (1: keep everyone)
    min_user_interactions: int = Field(1, ge=1)
    min_item_interactions: int = Field(1, ge=1)
    split: SplitSpec = SplitSpec()
    synthetic: SyntheticSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> "DatasetSpec":
        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; expected one of {', '.join(DATASETS)}")
        if self.name == "lightgcn-format" and self.path is None:
            raise ValueError("lightgcn-format needs dataset.path: a folder with train.txt and test.txt")
        if self.synthetic is not None and self.name != "synthetic":
            raise ValueError("dataset.synthetic options apply only to the synthetic dataset")
        return self

    @property
    def synthetic_options(self) -> SyntheticSpec:
        return self.synthetic or SyntheticSpec()
