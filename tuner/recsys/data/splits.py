"""Leak-free train / validation / test splits of an implicit graph."""

from __future__ import annotations

import numpy as np

from tuner.errors import DataError
from tuner.recsys.data.config import SplitSpec
from tuner.recsys.data.interactions import ImplicitGraph

Assignment = np.ndarray  # per edge: 0 train, 1 validation, 2 test

TRAIN, VAL, TEST = 0, 1, 2


def assign(graph: ImplicitGraph, spec: SplitSpec, dataset: str) -> Assignment:
    """Which split each edge of `graph` belongs to, reproducibly from `spec.seed`."""
    rng = np.random.default_rng(spec.seed)
    n = len(graph.users)
    if spec.kind == "random":
        split = _tail_split(rng.permutation(n), spec)
    elif spec.kind == "temporal":
        if graph.timestamps is None:
            raise DataError(f"dataset.split.kind: {dataset} has no timestamps; use random, per_user or given")
        # oldest edges train, newest test; random tie-breaking among equal timestamps
        split = _tail_split(np.lexsort((rng.random(n), graph.timestamps)), spec)
    elif spec.kind == "per_user":
        split = _per_user_split(graph.users, spec, rng)
    elif spec.kind == "given":
        if graph.given_test is None:
            raise DataError(f"dataset.split.kind: {dataset} has no given test set; use random, per_user or temporal")
        split = np.where(graph.given_test, TEST, TRAIN).astype(np.int8)
        if graph.given_val is not None:  # the dataset's own validation set
            split[graph.given_val & ~graph.given_test] = VAL
        else:  # carved from train
            train = np.flatnonzero(split == TRAIN)
            n_val = int(round(spec.val * len(train)))
            split[rng.choice(train, size=n_val, replace=False)] = VAL
    else:  # pragma: no cover - pydantic restricts kind
        raise AssertionError(spec.kind)
    _check_not_empty(split, spec, dataset)
    return split


def _tail_split(order: np.ndarray, spec: SplitSpec) -> Assignment:
    """Edges in `order`: the last `test` fraction is test, the last `val` fraction of the rest validation."""
    n = len(order)
    n_test = int(round(spec.test * n))
    n_val = int(round(spec.val * (n - n_test)))
    split = np.full(n, TRAIN, dtype=np.int8)
    split[order[n - n_test :]] = TEST
    split[order[n - n_test - n_val : n - n_test]] = VAL
    return split


def _per_user_split(users: np.ndarray, spec: SplitSpec, rng: np.random.Generator) -> Assignment:
    """Each user's edges in random order: round(test·n) to test, round(val·rest) to validation, at least one
    edge left in train."""
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    degree = np.bincount(users)
    starts = np.r_[0, np.cumsum(degree)[:-1]]
    rank = np.arange(len(users)) - starts[sorted_users]  # position of the edge among its user's edges
    n_test = np.minimum(np.rint(spec.test * degree), degree - 1)
    n_val = np.minimum(np.rint(spec.val * (degree - n_test)), degree - n_test - 1)
    n_test_u, n_val_u = n_test[sorted_users], n_val[sorted_users]
    split_sorted = np.where(rank < n_test_u, TEST, np.where(rank < n_test_u + n_val_u, VAL, TRAIN))
    split = np.empty(len(users), dtype=np.int8)
    split[order] = split_sorted
    return split


def _check_not_empty(split: Assignment, spec: SplitSpec, dataset: str) -> None:
    counts = np.bincount(split, minlength=3)
    if counts[TRAIN] == 0:
        raise DataError(f"dataset.split: {dataset} leaves no training edges ({len(split)} edges in all)")
    if counts[TEST] == 0:
        raise DataError(
            f"dataset.split.test: the test set of {dataset} is empty ({len(split)} edges, test={spec.test})"
        )
    if spec.val > 0 and counts[VAL] == 0:
        raise DataError(
            f"dataset.split.val: the validation set of {dataset} is empty ({counts[TRAIN]} train edges, val={spec.val})"
        )
