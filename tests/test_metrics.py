import math

import numpy as np
import pytest
import torch
from torch_geometric.metrics import (
    LinkPredCoverage,
    LinkPredHitRatio,
    LinkPredMAP,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)

from tests.conftest import tiny_split
from tuner.errors import DataError
from tuner.recsys.data import SplitData
from tuner.recsys.metrics import Evaluator, embedding_scores, popularity_scores


def _reference(scores: np.ndarray, data: SplitData, split: str, k: int) -> dict[str, float]:
    """Brute force, one user at a time."""
    truth = {"train": data.train, "val": data.val, "test": data.test}[split]
    masked = {"train": [], "val": [data.train], "test": [data.train, data.val]}[split]
    totals = dict(precision=0.0, recall=0.0, ndcg=0.0, hit=0.0, mrr=0.0, map=0.0)
    users = sorted(set(truth[0]))
    recommended = set()
    for user in users:
        relevant = set(truth[1][truth[0] == user])
        hidden = {i for edges in masked for i in edges[1][edges[0] == user]}
        ranking = [i for i in np.argsort(-scores[user], kind="stable") if i not in hidden][:k]
        hits = [1.0 if i in relevant else 0.0 for i in ranking]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        totals["precision"] += sum(hits) / k
        totals["recall"] += sum(hits) / len(relevant)
        totals["ndcg"] += dcg / idcg
        totals["hit"] += float(sum(hits) > 0)
        totals["mrr"] += next((1 / (r + 1) for r, h in enumerate(hits) if h), 0.0)
        totals["map"] += sum(sum(hits[: r + 1]) / (r + 1) for r, h in enumerate(hits) if h) / min(len(relevant), k)
        recommended |= set(ranking)
    return {**{m: v / len(users) for m, v in totals.items()}, "coverage": len(recommended) / data.num_items}


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_brute_force_reference(seed):
    data = tiny_split(num_users=13, num_items=17, seed=seed, density=0.5)
    rng = np.random.default_rng(seed)
    scores = rng.permutation(13 * 17).reshape(13, 17).astype(np.float32)  # distinct: no ties
    result = Evaluator(data, [1, 3, 5], batch_size=4).evaluate(lambda users: torch.from_numpy(scores)[users])
    for split in ("train", "val", "test"):
        for k in (1, 3, 5):
            expected = _reference(scores, data, split, k)
            for metric, value in expected.items():
                assert result[f"{split}/{metric}@{k}"] == pytest.approx(value, abs=1e-9), (split, metric, k)


def test_metrics_match_pyg_link_prediction_metrics():
    data = tiny_split(num_users=40, num_items=30, seed=3, density=0.5)
    torch.manual_seed(0)
    users_emb, items_emb = torch.randn(40, 4), torch.randn(30, 4)
    k = 5
    ours = Evaluator(data, [k]).evaluate(embedding_scores(users_emb, items_emb), splits=["train"])
    top = torch.topk(users_emb @ items_emb.T, k, dim=1).indices
    label_index = torch.from_numpy(data.train)
    for name, metric in [("precision", LinkPredPrecision(k)), ("recall", LinkPredRecall(k)),
                         ("ndcg", LinkPredNDCG(k)), ("hit", LinkPredHitRatio(k)), ("mrr", LinkPredMRR(k)),
                         ("map", LinkPredMAP(k)), ("coverage", LinkPredCoverage(k, num_dst_nodes=30))]:
        metric.update(top, label_index)
        assert ours[f"train/{name}@{k}"] == pytest.approx(float(metric.compute()), abs=1e-6), name


def test_users_without_ground_truth_are_excluded_and_counted():
    data = tiny_split(num_users=5, num_items=8)
    data = SplitData("t", 5, 8, data.train, data.val[:, data.val[0] != 2], data.test, "h")
    result = Evaluator(data, [2]).evaluate(popularity_scores(data))
    assert result["val/users"] == 4 and result["test/users"] == 5


def test_k_larger_than_the_item_count_is_an_error():
    with pytest.raises(DataError, match=r"fixed.k: K=9 is larger than the number of items \(8\)"):
        Evaluator(tiny_split(num_items=8), [5, 9])


def test_perfect_scores_give_perfect_train_metrics():
    data = tiny_split(num_users=6, num_items=10)
    relevant = np.zeros((6, 10), np.float32)
    relevant[data.train[0], data.train[1]] = 1
    result = Evaluator(data, [1]).evaluate(lambda users: torch.from_numpy(relevant)[users], splits=["train"])
    assert result["train/precision@1"] == result["train/ndcg@1"] == result["train/hit@1"] == 1.0


def test_most_popular_ranks_by_training_edge_count():
    data = SplitData(
        "t", 3, 4,
        train=np.array([[0, 1, 1, 2], [3, 3, 2, 3]]),
        val=np.array([[0], [2]]),
        test=np.array([[2], [0]]),
        split_hash="h",
    )
    result = Evaluator(data, [1]).evaluate(popularity_scores(data))
    assert result["val/hit@1"] == 1.0  # user 0: item 3 masked, item 2 is next most popular
    assert result["test/hit@1"] == 0.0  # user 2: item 2 is ranked above item 0
