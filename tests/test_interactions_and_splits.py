import numpy as np
import pytest

from tuner.errors import DataError
from tuner.recsys.data import DatasetSpec, prepare
from tuner.recsys.data.config import SplitSpec
from tuner.recsys.data.interactions import Interactions, to_implicit
from tuner.recsys.data.splits import TEST, TRAIN, VAL, assign


def _interactions():
    return Interactions(
        users=np.array([10, 10, 10, 20, 20, 30]),
        items=np.array([5, 5, 7, 5, 9, 9]),
        ratings=np.array([4, 2, 1, 5, 3, 4], dtype=np.float32),
        timestamps=np.array([3, 1, 2, 4, 5, 6]),
    )


def test_threshold_dedupe_and_remap():
    graph = to_implicit(_interactions(), rating_threshold=None, dataset="t")
    assert (graph.num_users, graph.num_items) == (3, 3)
    assert graph.counts["duplicates_collapsed"] == 1
    # user 10 / item 5 appears twice: the earliest timestamp (1) is kept
    assert sorted(zip(graph.users, graph.items, graph.timestamps)) == [
        (0, 0, 1), (0, 1, 2), (1, 0, 4), (1, 2, 5), (2, 2, 6)
    ]


def test_threshold_drops_low_ratings_and_unused_ids():
    graph = to_implicit(_interactions(), rating_threshold=4, dataset="t")
    assert graph.counts["edges_after_threshold"] == 3
    assert (graph.num_users, graph.num_items) == (3, 2)  # item 7 only had a rating of 1


def test_threshold_leaving_nothing_is_an_error():
    with pytest.raises(DataError, match="no interactions left after rating_threshold 6"):
        to_implicit(_interactions(), rating_threshold=6, dataset="t")


def test_threshold_on_implicit_dataset_is_an_error():
    implicit = Interactions(users=np.array([1]), items=np.array([2]))
    with pytest.raises(DataError, match="dataset.rating_threshold"):
        to_implicit(implicit, rating_threshold=1, dataset="gowalla")


def test_given_split_prefers_the_train_copy_of_a_duplicate():
    given = Interactions(users=np.array([1, 1, 2]), items=np.array([3, 3, 3]), given_test=np.array([True, False, True]))
    graph = to_implicit(given, None, "t")
    assert sorted(zip(graph.users, graph.items, graph.given_test)) == [(0, 0, False), (1, 0, True)]


def _graph(n_users=50, n_items=40, per_user=20, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    interactions = Interactions(users=users, items=items, timestamps=rng.integers(0, 1000, len(users)))
    return to_implicit(interactions, None, "t")


@pytest.mark.parametrize("kind", ["random", "per_user", "temporal"])
def test_splits_partition_edges_with_the_requested_fractions(kind):
    graph = _graph()
    split = assign(graph, SplitSpec(kind=kind, test=0.2, val=0.25, seed=1), "t")
    n = len(split)
    counts = np.bincount(split, minlength=3)
    assert counts[TEST] == pytest.approx(0.2 * n, abs=0.02 * n)
    assert counts[VAL] == pytest.approx(0.25 * (n - counts[TEST]), abs=0.02 * n)
    assert counts.sum() == n


def test_splits_are_reproducible_and_seed_dependent():
    graph = _graph()
    a = assign(graph, SplitSpec(seed=1), "t")
    assert np.array_equal(a, assign(graph, SplitSpec(seed=1), "t"))
    assert not np.array_equal(a, assign(graph, SplitSpec(seed=2), "t"))


def test_per_user_split_keeps_train_edges_for_every_user_and_holds_out_for_each():
    graph = _graph(per_user=3)
    split = assign(graph, SplitSpec(kind="per_user", test=0.4, val=0.4), "t")
    for user in range(graph.num_users):
        mine = split[graph.users == user]
        assert (mine == TRAIN).sum() >= 1
        assert (mine == TEST).sum() == 1


def test_temporal_split_puts_the_newest_edges_in_test():
    graph = _graph()
    split = assign(graph, SplitSpec(kind="temporal", test=0.2, val=0.1), "t")
    assert graph.timestamps[split == TRAIN].max() <= graph.timestamps[split == VAL].min()
    assert graph.timestamps[split == VAL].max() <= graph.timestamps[split == TEST].min()


def test_temporal_split_needs_timestamps():
    graph = to_implicit(Interactions(users=np.arange(10), items=np.arange(10)), None, "t")
    with pytest.raises(DataError, match="has no timestamps"):
        assign(graph, SplitSpec(kind="temporal"), "t")


def test_empty_test_split_is_an_error():
    graph = _graph(n_users=2, per_user=2)
    with pytest.raises(DataError, match="dataset.split.test: the test set of t is empty"):
        assign(graph, SplitSpec(test=0.01), "t")


def test_prepare_synthetic_is_cached_under_its_hash(tmp_path):
    spec = DatasetSpec(name="synthetic", synthetic={"num_users": 30, "num_items": 20, "interactions_per_user": 5})
    first = prepare(spec, cache_dir=tmp_path)
    assert list(tmp_path.glob(f"synthetic-{first.split_hash}.npz"))
    second = prepare(spec, cache_dir=tmp_path)
    assert second.split_hash == first.split_hash
    for name in ("train", "val", "test"):
        assert np.array_equal(first.edges(name), second.edges(name))
    other = prepare(spec.model_copy(update={"split": SplitSpec(seed=5)}), cache_dir=tmp_path)
    assert other.split_hash != first.split_hash


def test_prepared_split_is_leak_free():
    data = prepare(DatasetSpec(name="synthetic"))
    keys = {name: set(map(tuple, data.edges(name).T)) for name in ("train", "val", "test")}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    assert data.train.shape[1] > 0 and data.val.shape[1] > 0 and data.test.shape[1] > 0
    assert data.train.max(axis=1)[0] < data.num_users and data.train.max(axis=1)[1] < data.num_items


def test_cold_start_users_and_items_are_counted_and_reported():
    import numpy as np

    from tuner.recsys.data import SplitData

    train = np.array([[0, 0, 1], [0, 1, 1]])
    val = np.array([[1], [2]])  # item 2 only held out
    test = np.array([[2, 2], [0, 3]])  # user 2 only held out; item 3 only held out
    data = SplitData("tiny", 3, 4, train, val, test, split_hash="h")
    assert data.cold_start() == (1, 2)
    assert "cold start: 1 users and 2 items have held-out edges but no training edge" in data.summary()


def test_k_core_drops_users_and_items_until_every_one_left_has_enough_edges():
    from tuner.recsys.data.interactions import ImplicitGraph, k_core

    # user 2 has one edge (item 3): dropping it leaves item 3 with one edge (user 1), so item 3 goes next,
    # and then user 1 is down to one edge and goes too
    edges = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 3), (2, 3), (3, 0), (3, 1), (3, 2), (4, 1), (4, 2)]
    users, items = (np.array(column) for column in zip(*edges))
    graph = ImplicitGraph(5, 4, users, items, None, None, {"edges": len(edges)})
    core = k_core(graph, min_user=2, min_item=2, dataset="toy")
    assert (core.num_users, core.num_items) == (3, 3)  # users 0, 3, 4; items 0, 1, 2
    assert np.bincount(core.users).min() >= 2 and np.bincount(core.items).min() >= 2
    assert (core.counts["k_core_users_dropped"], core.counts["k_core_items_dropped"]) == (2, 1)
    assert core.counts["k_core_edges_dropped"] == 3 and core.counts["edges"] == 8
    with pytest.raises(DataError, match="no edge of toy is left after the 9-user / 2-item core"):
        k_core(graph, min_user=9, min_item=2, dataset="toy")


def test_k_core_filtering_comes_before_the_split_and_is_in_the_counts():
    spec = DatasetSpec(name="synthetic", synthetic={"num_users": 60, "num_items": 80, "interactions_per_user": 5},
                       min_item_interactions=5)
    data = prepare(spec)
    assert np.bincount(np.concatenate([data.train[1], data.val[1], data.test[1]])).min() >= 5
    assert data.counts["k_core_items_dropped"] > 0 and data.num_items == data.counts["items"]
    assert "the k-core dropped" in data.summary()
    assert data.split_hash != prepare(DatasetSpec(name="synthetic", synthetic=spec.synthetic)).split_hash
