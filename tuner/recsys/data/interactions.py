"""Raw interactions -> an implicit-feedback graph with contiguous ids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tuner.errors import DataError


@dataclass(frozen=True)
class Interactions:
    """Interactions as read from a dataset's files, with the dataset's own ids."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    given_test: np.ndarray | None = None  # True where the dataset's own test set holds the row
    given_val: np.ndarray | None = None  # True where the dataset's own validation set holds the row

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "ratings", "timestamps", "given_test", "given_val"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"interactions column {name} has {len(column)} rows, expected {n}")


@dataclass(frozen=True)
class ImplicitGraph:
    """Deduplicated user-item edges with ids remapped to 0..num_users-1 and 0..num_items-1."""

    num_users: int
    num_items: int
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None
    given_test: np.ndarray | None
    counts: dict = field(default_factory=dict)
    given_val: np.ndarray | None = None
    # the dataset's own id of each user and item (index: the contiguous id), so that results can name them
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None


def to_implicit(interactions: Interactions, rating_threshold: float | None, dataset: str) -> ImplicitGraph:
    """Keep ratings >= threshold as edges, collapse duplicate (user, item) pairs, remap ids.

    Duplicates keep the earliest timestamp; for a dataset with its own test (and validation) set, a pair present in
    train and test stays a train edge (it is already known at training time), one in validation and test a
    validation edge.
    """
    keep = np.ones(len(interactions.users), dtype=bool)
    if rating_threshold is not None:
        if interactions.ratings is None:
            raise DataError(
                f"dataset.rating_threshold: {dataset} has no ratings (implicit feedback only); set it to null"
            )
        keep = interactions.ratings >= rating_threshold
    users = interactions.users[keep]
    items = interactions.items[keep]
    timestamps = None if interactions.timestamps is None else interactions.timestamps[keep]
    given_test = None if interactions.given_test is None else interactions.given_test[keep]
    given_val = None if interactions.given_val is None else interactions.given_val[keep]
    if len(users) == 0:
        raise DataError(
            f"dataset {dataset}: no interactions left after rating_threshold {rating_threshold} "
            f"(read {len(interactions.users)} ratings)"
        )

    user_ids, users = np.unique(users, return_inverse=True)
    item_ids, items = np.unique(items, return_inverse=True)
    num_items = len(item_ids)
    key = users.astype(np.int64) * num_items + items
    # Order so that the row kept for a duplicate pair comes first: train before test, then earliest.
    sort_keys = []  # np.lexsort: the last key is the primary one
    if timestamps is not None:
        sort_keys.append(timestamps)
    if given_test is not None:  # train before validation before test
        sort_keys.append(2 * given_test.astype(np.int8) + (given_val if given_val is not None else 0))
    order = np.lexsort((*sort_keys, key))
    _, first = np.unique(key[order], return_index=True)
    rows = np.sort(order[first])
    counts = {
        "rows_read": int(len(interactions.users)),
        "edges_after_threshold": int(keep.sum()),
        "edges": int(len(rows)),
        "duplicates_collapsed": int(keep.sum() - len(rows)),
        "users": int(len(user_ids)),
        "items": int(num_items),
    }
    return ImplicitGraph(
        num_users=len(user_ids),
        num_items=num_items,
        users=users[rows].astype(np.int64),
        items=items[rows].astype(np.int64),
        timestamps=None if timestamps is None else timestamps[rows],
        given_test=None if given_test is None else given_test[rows],
        given_val=None if given_val is None else given_val[rows],
        counts=counts,
        user_ids=user_ids,
        item_ids=item_ids,
    )


def k_core(graph: ImplicitGraph, min_user: int, min_item: int, dataset: str) -> ImplicitGraph:
    """Drop users with fewer than `min_user` edges and items with fewer than `min_item`, again and again until every
    user and item left has enough (the k-core); ids are remapped. The counts say how many of each were dropped."""
    keep = np.ones(len(graph.users), dtype=bool)
    while True:
        user_degree = np.bincount(graph.users[keep], minlength=graph.num_users)
        item_degree = np.bincount(graph.items[keep], minlength=graph.num_items)
        still = keep & (user_degree[graph.users] >= min_user) & (item_degree[graph.items] >= min_item)
        if still.sum() == keep.sum():
            break
        keep = still
    if not keep.any():
        raise DataError(f"dataset.min_user_interactions / min_item_interactions: no edge of {dataset} is left after "
                        f"the {min_user}-user / {min_item}-item core; lower them")
    return _edges_kept(graph, keep, k_core_users_dropped=int((user_degree == 0).sum()),
                       k_core_items_dropped=int((item_degree == 0).sum()),
                       k_core_edges_dropped=int(len(keep) - keep.sum()))


def subsample_users(graph: ImplicitGraph, max_users: int, seed: int) -> ImplicitGraph:
    """Keep `max_users` users drawn at random (seeded) with all their edges; ids are remapped again, so items
    that only the dropped users had disappear."""
    kept_users = np.random.default_rng(seed).choice(graph.num_users, size=max_users, replace=False)
    return _edges_kept(graph, np.isin(graph.users, kept_users), users_before_subsample=graph.num_users)


def _edges_kept(graph: ImplicitGraph, keep: np.ndarray, **counts) -> ImplicitGraph:
    """The graph of the `keep` edges, users and items remapped to contiguous ids (every user and item of an
    ImplicitGraph has an edge, so those without a kept edge disappear); `counts` are added to the graph's."""
    user_ids, users = np.unique(graph.users[keep], return_inverse=True)
    item_ids, items = np.unique(graph.items[keep], return_inverse=True)
    return ImplicitGraph(
        num_users=len(user_ids),
        num_items=len(item_ids),
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        timestamps=None if graph.timestamps is None else graph.timestamps[keep],
        given_test=None if graph.given_test is None else graph.given_test[keep],
        given_val=None if graph.given_val is None else graph.given_val[keep],
        user_ids=None if graph.user_ids is None else graph.user_ids[user_ids],
        item_ids=None if graph.item_ids is None else graph.item_ids[item_ids],
        counts={**graph.counts, "edges": int(keep.sum()), "users": int(len(user_ids)), "items": int(len(item_ids)),
                **counts},
    )
