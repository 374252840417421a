"""Speed of one LightGCN training epoch, one epoch of BPR sampling and one full-ranking test evaluation on Gowalla.

Run by hand:  python benchmarks/speed_gowalla.py --data-dir ../shared/data [--threads 2] [--repeats 3] [--device cpu]

Side by side in the same run, the same batches with PyTorch's generic sparse backward (autograd through
`Â @ X`) instead of tuner's symmetric SpMM, so the gain of the custom autograd function is a measured ratio.
Prints a table and writes benchmarks/results/speed_gowalla.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tuner.recsys.data import DatasetSpec, prepare
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.metrics import Evaluator, embedding_scores
from tuner.recsys.models import build_model
from tuner.recsys.models import lightgcn as lightgcn_module
from tuner.recsys.training import Trainer


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_seconds(fn, repeats, device):
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _partial_epoch_seconds(trainer: Trainer, batches: int) -> float:
    """Seconds for the first `batches` optimisation steps of an epoch (sampling excluded)."""
    users, pos, neg = (torch.from_numpy(a).to(trainer.device) for a in trainer.sampler.sample(np.random.default_rng(0)))
    bs = trainer.hp.batch_size
    _sync(trainer.device)
    start = time.perf_counter()
    for b in range(batches):
        loss, _ = trainer._batch_loss(users[b * bs : (b + 1) * bs], pos[b * bs : (b + 1) * bs], neg[b * bs : (b + 1) * bs])
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
    _sync(trainer.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-batches", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed_gowalla.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    data = prepare(DatasetSpec(name="gowalla", split={"kind": "given", "val": 0.0}), data_dir=args.data_dir)
    print(data.summary())
    hp = Hyperparameters(embedding_dim=64, num_layers=3, batch_size=2048, lr=0.001, weight_decay=1e-4,
                         epochs=args.repeats, eval_every=10**6, k=[20])
    torch.manual_seed(0)
    train = torch.from_numpy(data.train)
    model = build_model("lightgcn", data.num_users, data.num_items, train, **hp.model_dump())
    trainer = Trainer(model, data, hp, device)

    sample_median, sample_all = _median_seconds(
        lambda: trainer.sampler.sample(np.random.default_rng(1)), max(args.repeats, 5), device
    )
    epochs = []
    for _ in range(args.repeats):
        epochs.append(trainer._train_epoch(len(epochs) + 1).train_seconds)
    evaluator = Evaluator(data, [20], device)

    def evaluate_test():
        with torch.no_grad():
            model.eval()
            users, items = model()
            evaluator.evaluate(embedding_scores(users, items), splits=["test"])

    eval_median, eval_all = _median_seconds(evaluate_test, args.repeats, device)

    # side by side: the same batches with the generic sparse backward
    ours = _partial_epoch_seconds(trainer, args.compare_batches)
    original = lightgcn_module.propagate
    lightgcn_module.propagate = lambda adjacency, x: adjacency @ x
    try:
        generic = _partial_epoch_seconds(trainer, args.compare_batches)
    finally:
        lightgcn_module.propagate = original

    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": args.threads,
        "epoch_seconds_median": statistics.median(epochs),
        "epoch_seconds": epochs,
        "sampling_seconds_median": sample_median,
        "sampling_seconds": sample_all,
        "test_eval_seconds_median": eval_median,
        "test_eval_seconds": eval_all,
        "batches_compared": args.compare_batches,
        "symmetric_spmm_seconds": ours,
        "generic_sparse_backward_seconds": generic,
        "generic_over_symmetric": generic / ours,
        "peak_rss_gib": peak_rss_gib,
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
