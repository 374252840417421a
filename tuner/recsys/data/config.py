"""The `dataset:` block of a spec: which dataset, which edges count, how they are split."""

from __future__ import annotations

from pathlib import PurePosixPath
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


INTERACTIONS = "interactions"  # the dataset a user brings: interaction files named by the spec
FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".inter": "inter"}


class ColumnsSpec(_Frozen):
    """Which columns of an interaction file hold what: header names, or 0-based positions for a file without a
    header. Unset: user and item are `user`/`item` (`user_id`/`item_id` in a RecBole .inter file), and a `rating`
    or `timestamp` column is used when the file has one."""

    user: str | int | None = None
    item: str | int | None = None
    rating: str | int | None = None
    timestamp: str | int | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "ColumnsSpec":
        given = [v for v in (self.user, self.item, self.rating, self.timestamp) if v is not None]
        positions = [v for v in given if isinstance(v, int)]
        if positions and len(positions) != len(given):
            raise ValueError("name every column by its header, or every column by its position (a file without a "
                             "header), not both")
        if positions and (self.user is None or self.item is None):
            raise ValueError("a file without a header needs the positions of user and item")
        if any(p < 0 for p in positions):
            raise ValueError(f"positions count from 0, got {positions}")
        return self

    @property
    def by_position(self) -> bool:
        return isinstance(self.user, int)


class DatasetSpec(_Frozen):
    name: str = "movielens-100k"
    # a folder holding the raw files (required for lightgcn-format); for interactions, the file of every interaction
    path: str | None = None
    # interactions: the dataset's own split as separate files (instead of path), read with split.kind: given
    train: str | None = None
    test: str | None = None
    val: str | None = None
    format: Literal["csv", "tsv", "parquet", "inter"] | None = None  # interactions: unset, from the file's suffix
    columns: ColumnsSpec | None = None  # interactions
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
        if self.name == INTERACTIONS:
            self._check_interaction_files()
        else:
            for option in ("train", "test", "val", "format", "columns"):
                if getattr(self, option) is not None:
                    raise ValueError(f"dataset.{option}: applies only to dataset {INTERACTIONS} (your own files)")
        return self

    def _check_interaction_files(self) -> None:
        if self.path is not None and (self.train or self.test or self.val):
            raise ValueError("interactions: give either dataset.path (every interaction in one file) or dataset.train "
                             "and dataset.test (the dataset's own split), not both")
        if self.path is None and not (self.train and self.test):
            raise ValueError("interactions needs dataset.path (a CSV, TSV, parquet or RecBole .inter file), or "
                             "dataset.train and dataset.test files")
        if self.path is not None and self.split.kind == "given":
            raise ValueError("dataset.split.kind: given needs the dataset's own split: dataset.train and dataset.test "
                             "files instead of dataset.path")
        if self.format is None:
            for file in self.files().values():
                suffix = PurePosixPath(file).suffix.lower()
                if suffix not in FILE_FORMATS:
                    raise ValueError(f"dataset.format: cannot tell the format of {file} from its suffix; set "
                                     "dataset.format: csv, tsv, parquet or inter")

    def files(self) -> dict[str, str]:
        """interactions: role (all, train, val, test) -> the file or URI the spec names."""
        if self.path is not None:
            return {"all": self.path}
        return {role: file for role, file in (("train", self.train), ("val", self.val), ("test", self.test)) if file}

    def file_format(self, file: str) -> str:
        return self.format or FILE_FORMATS[PurePosixPath(file).suffix.lower()]

    @property
    def synthetic_options(self) -> SyntheticSpec:
        return self.synthetic or SyntheticSpec()
