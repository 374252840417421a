"""Full-ranking top-K metrics on train/val/test for every K: per user precision, recall, NDCG, hit rate, MRR
(1 / the rank of the first relevant item in the top K) and MAP (average precision: the precision at each relevant
item's rank, summed, over min(K, the user's relevant items)); of the catalogue, coverage (the share of all items
that are in some evaluated user's top K).

Every user is scored against every item. Ground truth and masking per split:
  train: ground truth = train items, nothing masked;
  val:   ground truth = validation items, train items masked;
  test:  ground truth = test items, train and validation items masked.
Users without ground truth in a split are left out of that split's means and counted (`<split>/users`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from tuner.errors import DataError
from tuner.recsys.data import SplitData
from tuner.vocabulary import METRICS, SPLITS, metric_key, users_key

# user ids (B,) -> scores (B, num_items): a new tensor, which the evaluator masks in place (no copy of B x items)
ScoreFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class _CSR:
    indptr: Tensor
    indices: Tensor

    @classmethod
    def from_edges(cls, edges: np.ndarray, num_users: int, device: torch.device) -> "_CSR":
        order = np.lexsort((edges[1], edges[0]))
        counts = np.bincount(edges[0], minlength=num_users)
        indptr = torch.from_numpy(np.r_[0, np.cumsum(counts)]).to(device)
        return cls(indptr, torch.from_numpy(np.ascontiguousarray(edges[1][order])).to(device))

    def degree(self) -> Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def rows(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """(row position in `users`, item) for every edge of the given users."""
        start, count = self.indptr[users], self.degree()[users]
        row = torch.repeat_interleave(torch.arange(len(users), device=users.device), count)
        first = torch.cumsum(count, 0) - count
        offset = torch.arange(len(row), device=users.device) - first[row]
        return row, self.indices[start[row] + offset]


class Evaluator:
    """Precomputes ground truth and masks of a split dataset; evaluates any scoring function."""

    def __init__(self, data: SplitData, ks: Sequence[int], device: torch.device | str = "cpu", batch_size: int = 1024):
        self.ks = tuple(sorted(set(ks)))
        if self.ks[-1] > data.num_items:
            raise DataError(
                f"fixed.k: K={self.ks[-1]} is larger than the number of items ({data.num_items}) of {data.dataset}"
            )
        self.device = torch.device(device)
        self.num_items = data.num_items
        self.batch_size = batch_size
        n = data.num_users
        train = _CSR.from_edges(data.train, n, self.device)
        train_val = _CSR.from_edges(np.concatenate([data.train, data.val], axis=1), n, self.device)
        self.plan = {
            "train": (train, None),
            "val": (_CSR.from_edges(data.val, n, self.device), train),
            "test": (_CSR.from_edges(data.test, n, self.device), train_val),
        }
        kmax = self.ks[-1]
        discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.float64, device=self.device))
        self.discount = discount
        self.ideal_dcg = torch.cumsum(discount, 0)  # ideal_dcg[m-1]: DCG of m hits at the top

    @torch.no_grad()
    def evaluate(
        self, score_fn: ScoreFn, splits: Sequence[str] = SPLITS, per_user: dict | None = None
    ) -> dict[str, float]:
        """Mean of every metric over the users with ground truth in each split, plus `<split>/users`.
        Given a dict `per_user`, also stores each split's (users, values) from evaluate_per_user in it."""
        results: dict[str, float] = {}
        for split in splits:
            users, values, coverage = self._evaluate_split(score_fn, split)
            if per_user is not None:
                per_user[split] = (users, values)
            for name, column in values.items():
                results[f"{split}/{name}"] = float(column.mean()) if len(users) else 0.0
            for k, share in coverage.items():
                results[metric_key(split, "coverage", k)] = share
            results[users_key(split)] = float(len(users))
        return results

    def evaluate_per_user(self, score_fn: ScoreFn, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The users with ground truth in `split` and each one's metrics: {"recall@20": array, ...}."""
        users, columns, _ = self._evaluate_split(score_fn, split)
        return users, columns

    @torch.no_grad()
    def _evaluate_split(self, score_fn: ScoreFn, split: str):
        """Per-user metrics of the split's users, and the catalogue coverage of their top K for every K."""
        truth, mask = self.plan[split]
        users = torch.nonzero(truth.degree() > 0).flatten()
        recommended = torch.zeros(len(self.ks), self.num_items, dtype=torch.bool, device=self.device)
        batches = []
        for batch in torch.split(users, self.batch_size):
            values, top = self._batch_values(score_fn(batch), batch, truth, mask)
            batches.append(values)
            for j, k in enumerate(self.ks):
                recommended[j, top[:, :k].flatten()] = True
        values = torch.cat(batches, dim=0) if batches else torch.zeros(0, len(METRICS), len(self.ks), dtype=torch.float64)
        columns = {
            f"{metric}@{k}": values[:, m, j].cpu().numpy()
            for j, k in enumerate(self.ks)
            for m, metric in enumerate(METRICS)
        }
        coverage = {k: float(recommended[j].sum()) / self.num_items for j, k in enumerate(self.ks)}
        return users.cpu().numpy(), columns, coverage

    def _batch_values(self, scores: Tensor, users: Tensor, truth: _CSR, mask: _CSR | None) -> tuple[Tensor, Tensor]:
        """(batch, metric, K) values for each user of the batch, and the batch's top items."""
        scores = scores.float()  # the score function's own tensor (ScoreFn): masked in place
        if mask is not None:
            row, item = mask.rows(users)
            scores[row, item] = -torch.inf
        top = torch.topk(scores, self.ks[-1], dim=1).indices
        row, item = truth.rows(users)  # the batch's relevant (user, item) pairs, as codes row * num_items + item
        batch_rows = torch.arange(len(users), device=scores.device).unsqueeze(1)
        hits = torch.isin(batch_rows * self.num_items + top, row * self.num_items + item).double()
        n_true = truth.degree()[users].double()
        cum_hits = torch.cumsum(hits, 1)
        cum_dcg = torch.cumsum(hits * self.discount, 1)
        rank = torch.arange(1, self.ks[-1] + 1, dtype=torch.float64, device=scores.device)
        reciprocal = hits / rank  # 1/rank at each relevant position
        precision_at_hits = torch.cumsum(hits, 1) / rank * hits  # precision@i at each relevant position i
        out = []
        for k in self.ks:
            h = cum_hits[:, k - 1]
            ideal = self.ideal_dcg[torch.clamp(n_true, max=k).long() - 1]
            mrr = reciprocal[:, :k].max(dim=1).values  # the first relevant item has the largest 1/rank
            average_precision = precision_at_hits[:, :k].sum(1) / torch.clamp(n_true, max=k)
            out.append(torch.stack([h / k, h / n_true, cum_dcg[:, k - 1] / ideal, (h > 0).double(), mrr,
                                    average_precision], dim=1))
        return torch.stack(out, dim=2), top


def embedding_scores(users_emb: Tensor, items_emb: Tensor) -> ScoreFn:
    """Inner-product scores of final embeddings."""
    return lambda users: users_emb[users] @ items_emb.T


def popularity_scores(data: SplitData, device: torch.device | str = "cpu") -> ScoreFn:
    """MostPop: every user gets the items with the most training edges."""
    counts = torch.from_numpy(np.bincount(data.train[1], minlength=data.num_items)).float().to(device)
    return lambda users: counts.repeat(len(users), 1)
