import numpy as np
import pytest

from tuner.errors import DataError
from tuner.recsys.data.sampling import BPRSampler


def _train(num_users=20, num_items=15, seed=0):
    rng = np.random.default_rng(seed)
    edges = {(u, i) for u in range(num_users) for i in rng.choice(num_items, rng.integers(1, num_items - 1), replace=False)}
    return np.array(sorted(edges)).T


def test_negatives_are_never_training_positives():
    train = _train()
    sampler = BPRSampler(20, 15, train)
    positives = set(map(tuple, train.T))
    for seed in range(5):
        users, pos, neg = sampler.sample(np.random.default_rng(seed))
        assert all((u, p) in positives for u, p in zip(users, pos))
        assert not any((u, n) in positives for u, n in zip(users, neg))


def test_default_is_one_triple_per_training_edge():
    train = _train()
    users, pos, _ = BPRSampler(20, 15, train).sample(np.random.default_rng(0))
    assert sorted(zip(users, pos)) == sorted(map(tuple, train.T))


def test_samples_per_user_draws_n_triples_for_every_training_user():
    train = _train()
    sampler = BPRSampler(25, 15, train, samples_per_user=7)  # users 20..24 have no training edges
    users, pos, _ = sampler.sample(np.random.default_rng(0))
    assert len(users) == len(sampler) == 20 * 7
    assert np.array_equal(np.bincount(users, minlength=25), np.r_[np.full(20, 7), np.zeros(5)])


def test_negatives_are_uniform_over_non_interacted_items():
    train = np.array([[0, 0], [0, 1]])  # user 0 has items 0 and 1 of 5
    sampler = BPRSampler(1, 5, train, samples_per_user=30_000)
    _, _, neg = sampler.sample(np.random.default_rng(0))
    freq = np.bincount(neg, minlength=5) / len(neg)
    assert freq[:2].sum() == 0
    assert np.allclose(freq[2:], 1 / 3, atol=0.01)


def test_user_with_all_but_one_item_terminates():
    num_items = 2000
    train = np.stack([np.zeros(num_items - 1, dtype=np.int64), np.arange(1, num_items)])
    sampler = BPRSampler(1, num_items, train, samples_per_user=50)
    _, _, neg = sampler.sample(np.random.default_rng(0))
    assert set(neg) == {0}


def test_user_with_every_item_is_a_clear_error():
    train = np.stack([np.array([0, 0, 0, 1]), np.array([0, 1, 2, 0])])
    with pytest.raises(DataError, match="user 0 .* every one of the 3 items"):
        BPRSampler(2, 3, train)
