"""BPR triple sampling: (user, positive item, negative item), vectorised with NumPy."""

from __future__ import annotations

import numpy as np

from tuner.errors import DataError

MAX_REJECTION_ROUNDS = 32


class BPRSampler:
    """Draws one epoch of BPR triples from the training edges.

    samples_per_user=None: one triple per training edge (its user and item), in random order (LightGCN-PyTorch
    draws as many triples with the user uniform, which samples_per_user = edges / users matches in expectation).
    samples_per_user=n: n triples for every user with training edges, the
    positive uniform among the user's training items. Negatives are uniform among the items the user has
    no training edge with (held-out edges are never looked at: training stays blind to them).
    """

    def __init__(self, num_users: int, num_items: int, train: np.ndarray, samples_per_user: int | None = None):
        users, items = train
        self.num_items = num_items
        self.samples_per_user = samples_per_user
        self.users, self.items = users, items
        self.keys = np.sort(users * num_items + items)  # membership test by binary search
        self.degree = np.bincount(users, minlength=num_users)
        self.indptr = np.r_[0, np.cumsum(self.degree)]  # train is sorted by user
        saturated = np.flatnonzero(self.degree >= num_items)
        if len(saturated):
            raise DataError(
                f"dataset: user {saturated[0]} (and {len(saturated) - 1} more) has a training edge with every one "
                f"of the {num_items} items, so no negative item exists for BPR; drop such users or add items"
            )
        self.active_users = np.flatnonzero(self.degree > 0)

    def __len__(self) -> int:
        if self.samples_per_user is None:
            return len(self.users)
        return len(self.active_users) * self.samples_per_user

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.samples_per_user is None:
            order = rng.permutation(len(self.users))
            users, positives = self.users[order], self.items[order]
        else:
            users = rng.permutation(np.repeat(self.active_users, self.samples_per_user))
            offsets = (rng.random(len(users)) * self.degree[users]).astype(np.int64)
            positives = self.items[self.indptr[users] + offsets]
        return users, positives, self.negatives(users, rng)

    def negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform items outside each user's training items: rejection sampling, then an exact draw for the
        few users (those with almost every item) still colliding after MAX_REJECTION_ROUNDS."""
        negatives = rng.integers(self.num_items, size=len(users))
        todo = np.flatnonzero(self._is_positive(users, negatives))
        for _ in range(MAX_REJECTION_ROUNDS):
            if len(todo) == 0:
                return negatives
            negatives[todo] = rng.integers(self.num_items, size=len(todo))
            todo = todo[self._is_positive(users[todo], negatives[todo])]
        for row in todo:
            user = users[row]
            seen = self.items[self.indptr[user] : self.indptr[user + 1]]
            negatives[row] = rng.choice(np.setdiff1d(np.arange(self.num_items), seen))
        return negatives

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        position = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[position] == keys
