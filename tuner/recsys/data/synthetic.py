"""A seeded synthetic dataset with planted preference structure, for tests and examples.

Users and items belong to clusters; each user's items come from its own cluster with probability
`in_cluster` (rated 4-5) and from anywhere otherwise (rated 1-3), with a Zipf-like popularity inside
each choice. A model that learns the clusters beats popularity; one that does not, does not.
"""

from __future__ import annotations

import numpy as np

from tuner.recsys.data.config import SyntheticSpec
from tuner.recsys.data.interactions import Interactions


def generate(options: SyntheticSpec) -> Interactions:
    rng = np.random.default_rng(options.seed)
    n_users, n_items = options.num_users, options.num_items
    per_user = min(options.interactions_per_user, n_items)
    user_cluster = rng.integers(options.clusters, size=n_users)
    item_cluster = rng.integers(options.clusters, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]

    users, items, ratings = [], [], []
    for user in range(n_users):
        own = np.flatnonzero(item_cluster == user_cluster[user])
        n_own = min(len(own), int(round(per_user * options.in_cluster)))
        chosen_own = (rng.choice(own, size=n_own, replace=False, p=_normalised(popularity[own])) if n_own
                      else np.array([], dtype=np.int64))
        others = np.setdiff1d(np.arange(n_items), chosen_own)
        n_other = per_user - n_own
        chosen_other = rng.choice(others, size=n_other, replace=False, p=_normalised(popularity[others]))
        chosen = np.concatenate([np.asarray(chosen_own, dtype=np.int64), chosen_other])
        users.append(np.full(len(chosen), user))
        items.append(chosen)
        liked = item_cluster[chosen] == user_cluster[user]
        ratings.append(np.where(liked, rng.integers(4, 6, len(chosen)), rng.integers(1, 4, len(chosen))))
    n = sum(len(u) for u in users)
    return Interactions(
        users=np.concatenate(users).astype(np.int64),
        items=np.concatenate(items).astype(np.int64),
        ratings=np.concatenate(ratings).astype(np.float32),
        timestamps=rng.integers(0, 10_000_000, size=n).astype(np.int64),
    )


def _normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()
