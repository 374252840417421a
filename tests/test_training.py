import itertools
import math

import pytest
import torch

from tests.conftest import tiny_split
from tuner.errors import DivergedError
from tuner.recsys.data import DatasetSpec, prepare
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.models import build_model
from tuner.recsys.training import Callback, EpochResult, Trainer, best_epoch, build_model_for

SYNTHETIC = DatasetSpec(
    name="synthetic",
    synthetic={"num_users": 120, "num_items": 80, "interactions_per_user": 15, "clusters": 4, "in_cluster": 0.9},
    split={"kind": "per_user", "test": 0.2, "val": 0.1},
)


def _run(model="lightgcn", **overrides):
    data = prepare(SYNTHETIC)
    hp = Hyperparameters(**{"embedding_dim": 16, "num_layers": 2, "epochs": 4, "lr": 0.01, "batch_size": 256,
                            "k": [5, 10], **overrides})
    torch.manual_seed(hp.seed)
    net = build_model(model, data.num_users, data.num_items, torch.from_numpy(data.train), **hp.model_dump())
    return data, hp, net


def test_seeded_runs_give_identical_numbers():
    runs = []
    for _ in range(2):
        data, hp, net = _run("ngcf")
        runs.append([(r.loss, r.metrics) for r in Trainer(net, data, hp).run()])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("model", ["mf", "lightgcn", "ngcf", "gat"])
def test_training_learns_the_planted_structure(model):
    data, hp, net = _run(model, epochs=25, eval_every=25, weight_decay=0.0)
    results = list(Trainer(net, data, hp).run())
    assert results[-1].loss < results[0].loss
    popular = Evaluator(data, [10]).evaluate(popularity_scores(data), splits=["test"])
    assert results[-1].metrics["test/recall@10"] > popular["test/recall@10"] + 0.05


class _LayerByLayerLightGCN(torch.nn.Module):
    """LightGCN as the paper writes it, each layer's output kept and summed: the reference the fused propagation
    (models.graph.power_sum) must reproduce."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.user_embedding, self.item_embedding = model.user_embedding, model.item_embedding

    def forward(self):
        from tuner.recsys.models.graph import propagate

        x = self.model.ego_embeddings()
        total = x
        for _ in range(self.model.num_layers):
            x = propagate(self.model.get_buffer("adjacency"), x)
            total = total + x
        return self.model.split(total / (self.model.num_layers + 1))

    def auxiliary_loss(self, *batch):
        return None


def test_lightgcn_trains_to_the_loss_curve_of_the_plain_implementation():
    """The fast paths (Horner's-rule propagation, fused Adam) against the plain ones: layer-by-layer propagation and
    PyTorch's default Adam, from the same seed."""
    curves = []
    for reference in (False, True):
        data, hp, net = _run("lightgcn", num_layers=3, epochs=6, eval_every=3)
        trainer = Trainer(_LayerByLayerLightGCN(net) if reference else net, data, hp)
        if reference:
            trainer.optimizer = torch.optim.Adam(net.parameters(), lr=hp.lr)
        results = list(trainer.run())
        curves.append(([r.loss for r in results], [r.metrics.get("val/recall@10") for r in results]))
    (losses, recalls), (reference_losses, reference_recalls) = curves
    assert losses == pytest.approx(reference_losses, rel=1e-5) and recalls == reference_recalls


def test_metrics_every_eval_every_epochs_and_at_the_end():
    data, hp, net = _run(epochs=5, eval_every=2)
    evaluated = [r.epoch for r in Trainer(net, data, hp).run() if r.evaluated]
    assert evaluated == [2, 4, 5]


def test_resumed_run_equals_uninterrupted_run():
    data, hp, net = _run("ngcf", epochs=4)
    uninterrupted = [r.loss for r in Trainer(net, data, hp).run()]

    data, hp, net = _run("ngcf", epochs=4)
    trainer = Trainer(net, data, hp)
    first = [r.loss for r in itertools.islice(trainer.run(), 2)]
    state = trainer.state_dict()
    _, _, fresh = _run("ngcf", epochs=4)
    torch.manual_seed(123)  # a different global RNG state must not matter
    resumed = Trainer(fresh, data, hp)
    resumed.load_state_dict(state)
    assert first + [r.loss for r in resumed.run()] == uninterrupted


@pytest.mark.parametrize("regularization", ["embedding_l2", "optimizer"])
def test_weight_decay_shrinks_embeddings(regularization):
    norms = []
    for decay in (0.0, 1.0):
        data, hp, net = _run("mf", epochs=3, weight_decay=decay, regularization=regularization)
        list(Trainer(net, data, hp).run())
        norms.append(net.user_embedding.weight.norm().item())
    assert norms[1] < norms[0]


def test_non_finite_loss_ends_the_run_with_a_clear_error():
    data, hp, net = _run("mf")
    with torch.no_grad():
        net.user_embedding.weight[0] = float("nan")
    with pytest.raises(DivergedError, match="epoch 1 loss is nan"):
        list(Trainer(net, data, hp).run())


def _result(epoch, value, users=10.0):
    return EpochResult(epoch, 0, 0, 0, 0, 0, {"val/recall@20": value, "val/users": users})


def test_best_epoch_selects_on_validation_earliest_tie():
    results = [_result(1, 0.1), _result(2, 0.3), EpochResult(3, 0, 0, 0, 0, 0), _result(4, 0.3)]
    assert best_epoch(results, "val/recall@20").epoch == 2
    assert best_epoch(results, "val/recall@20", mode="min").epoch == 1


def test_best_epoch_without_validation_is_the_last_evaluated():
    results = [_result(1, 0.0, users=0), _result(2, 0.0, users=0)]
    assert best_epoch(results, "val/recall@20").epoch == 2


def test_callbacks_see_each_epoch_start_and_can_change_a_batch_loss():
    data = tiny_split()
    hp = Hyperparameters(epochs=3, k=[2], batch_size=8, eval_every=3)

    class Record(Callback):
        def __init__(self):
            self.epochs, self.batches = [], 0

        def on_epoch_start(self, trainer, epoch):
            self.epochs.append(epoch)

        def on_batch_loss(self, trainer, epoch, loss):
            self.batches += 1
            return loss * float("nan") if epoch == 2 else loss

    seen = Record()
    trainer = Trainer(build_model_for("mf", data, hp), data, hp, callbacks=(seen,))
    with pytest.raises(DivergedError, match="epoch 2 loss is nan"):
        list(trainer.run())
    assert seen.epochs == [1, 2] and seen.batches == 2 * -(-data.train.shape[1] // hp.batch_size)  # every batch


def test_training_flushes_subnormal_floats_to_zero():
    """Weight decay drives embeddings into subnormal floats, on which the CPU is 10-100x slower."""
    data = tiny_split()
    hp = Hyperparameters(epochs=1, k=[2])
    Trainer(build_model_for("mf", data, hp), data, hp)
    assert torch.tensor([1e-40], dtype=torch.float32).item() == 0.0


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc")
def test_training_reuses_freed_table_sized_memory_instead_of_page_faulting_it_in_again():
    """A freed 16 MB tensor's pages are kept for the next one: no minor page faults when it is allocated again."""
    import resource

    data = tiny_split()
    hp = Hyperparameters(epochs=1, k=[2])
    Trainer(build_model_for("mf", data, hp), data, hp)
    torch.ones(4 * 2**20).sum()  # the first allocation of this size may fault its pages in
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.ones(4 * 2**20).sum()
    # 5 x 4096 pages were they handed back; other threads of the process (a test run's) fault a few pages of their own
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 4096


class _ScoresEveryItemAlike(Callback):
    """Every parameter zeroed, and never updated: BPR's loss is ln 2 at every epoch, as a collapsed model's is."""

    def on_epoch_start(self, trainer, epoch):
        for parameter in trainer.model.parameters():
            parameter.data.zero_()

    def on_batch_loss(self, trainer, epoch, loss):
        return loss * 0.0


def test_a_collapsed_training_ends_evaluated_after_three_epochs_at_ln2():
    """The seed study's samples-per-user ablation trained dead models for all 30 epochs (loss 0.6931, recall near 0)."""
    data = tiny_split()
    hp = Hyperparameters(epochs=10, k=[2], eval_every=5)
    results = list(Trainer(build_model_for("mf", data, hp), data, hp, callbacks=(_ScoresEveryItemAlike(),)).run())
    assert [r.epoch for r in results] == [1, 2, 3] and [r.collapsed for r in results] == [False, False, True]
    assert results[-1].evaluated and abs(results[-1].bpr_loss - math.log(2)) < 1e-6


@pytest.mark.parametrize("lr", [0.01, 1e-6])
def test_learning_models_fast_or_slow_do_not_collapse(lr):
    data = tiny_split()
    hp = Hyperparameters(epochs=12, k=[2], lr=lr, eval_every=4)
    results = list(Trainer(build_model_for("lightgcn", data, hp), data, hp).run())
    assert len(results) == 12 and not any(r.collapsed for r in results)
