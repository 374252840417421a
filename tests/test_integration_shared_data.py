"""The real datasets in ../shared/data: loading, counts, given splits, one short training each."""

import pytest
import torch

from tuner.recsys.data import DatasetSpec, prepare
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.models import build_model
from tuner.recsys.training import Trainer

pytestmark = pytest.mark.integration


def test_movielens_100k_counts_and_given_split(shared_data):
    data = prepare(DatasetSpec(name="movielens-100k", split={"kind": "given", "val": 0.0}), data_dir=shared_data)
    assert (data.num_users, data.num_items) == (943, 1682)
    assert (data.train.shape[1], data.test.shape[1]) == (80_000, 20_000)  # u1.base / u1.test


def test_movielens_100k_threshold(shared_data):
    data = prepare(DatasetSpec(name="movielens-100k", rating_threshold=4), data_dir=shared_data)
    assert data.counts["edges"] == 55_375  # ratings of 4 and 5
    assert data.train.shape[1] + data.val.shape[1] + data.test.shape[1] == 55_375


def test_movielens_latest_small(shared_data):
    data = prepare(DatasetSpec(name="movielens-latest-small"), data_dir=shared_data)
    assert (data.num_users, data.num_items, data.counts["edges"]) == (610, 9724, 100_836)


def test_movielens_1m_implicit_in_lightgcn_format(shared_data):
    spec = DatasetSpec(name="lightgcn-format", path=str(shared_data / "ml-1m-implicit"), split={"kind": "given", "val": 0.1})
    data = prepare(spec)
    assert data.train.shape[1] + data.val.shape[1] == 457_819 and data.test.shape[1] == 117_462


@pytest.mark.slow
def test_gowalla_counts_and_popularity_baseline(shared_data):
    data = prepare(DatasetSpec(name="gowalla", split={"kind": "given", "val": 0.0}), data_dir=shared_data)
    assert (data.num_users, data.num_items) == (29_858, 40_981)
    assert (data.train.shape[1], data.test.shape[1]) == (810_128, 217_242)
    result = Evaluator(data, [20]).evaluate(popularity_scores(data), splits=["test"])
    assert result["test/users"] == 29_858
    assert 0.02 < result["test/recall@20"] < 0.06  # MostPop is weak on Gowalla


@pytest.mark.slow
def test_short_lightgcn_training_on_movielens_100k_beats_most_popular(shared_data):
    data = prepare(DatasetSpec(name="movielens-100k", split={"kind": "random", "test": 0.2, "val": 0.1}), data_dir=shared_data)
    hp = Hyperparameters(lr=0.005, batch_size=1024, epochs=4, eval_every=4, k=[20])
    torch.manual_seed(0)
    model = build_model("lightgcn", data.num_users, data.num_items, torch.from_numpy(data.train), **hp.model_dump())
    result = list(Trainer(model, data, hp).run())[-1]
    popular = Evaluator(data, [20]).evaluate(popularity_scores(data))
    assert result.metrics["test/recall@20"] > popular["test/recall@20"] + 0.05
    assert result.metrics["val/recall@20"] > popular["val/recall@20"] + 0.05


def test_the_mf_baseline_beats_mostpop_on_an_ml100k_ablation_subsample(shared_data):
    """The MF baseline trains with its own settings: with the ablation's (lr 0.001, Adam weight decay, 30 epochs)
    it fell below MostPop on 200-user subsamples and flagged every row of the ablation."""
    from pathlib import Path

    from tuner.recsys import baselines
    from tuner.spec_loader import load_spec

    spec_file = Path(__file__).resolve().parents[1] / "search_spaces" / "ablations" / "weight_decay_ml100k.yaml"
    spec = load_spec(spec_file, ["dataset.max_users=200"])
    data = prepare(spec.dataset, data_dir=shared_data)
    mostpop = baselines.compute(data, "mostpop", None, spec.fixed.k, spec.metric, spec.mode)["test/precision@10"]
    mf = baselines.compute(data, "mf", 0, spec.fixed.k, spec.metric, spec.mode)
    assert mf["test/precision@10"] > mostpop and mf["baseline"] == "mf (rank 8)"


@pytest.mark.slow
def test_the_paper_protocol_spec_trains_on_gowalla(shared_data, tmp_path):
    """search_spaces/paper/lightgcn_gowalla.yaml as `tuner train` runs it, cut to one short epoch."""
    import json
    from pathlib import Path

    from tests.cli import tuner

    spec = Path(__file__).resolve().parents[1] / "search_spaces" / "paper" / "lightgcn_gowalla.yaml"
    result = tuner("train", spec, "--data-dir", shared_data, "--set", "epochs=1", "--set", "samples_per_user=1",
                   "--checkpoint", tmp_path / "paper.ckpt", "--output", tmp_path / "out.json")
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["counts"]["users"] == 29_858 and out["best_metrics"]["test/users"] == 29_858
    assert out["best_metrics"]["test/recall@20"] > 0 and (tmp_path / "paper.ckpt").exists()
