"""Speed of one LightGCN training epoch, one epoch of BPR sampling and one full-ranking test evaluation on Gowalla.

Run by hand:  python benchmarks/speed_gowalla.py --data-dir ../shared/data [--threads 2] [--repeats 3] [--device cpu]

Side by side in the same run, the same batches three ways: tuner's propagation (Σ Âᵏ X by Horner's rule, fused
sparse addmm, symmetric backward), layer by layer with the symmetric SpMM (tuner before), and layer by layer with
PyTorch's generic sparse backward (autograd through `Â @ X`), so each gain is a measured ratio.
Then where a step's time goes (SpMM, the rest of the propagation, loss, optimizer, sampling) and how far the step
is from the limit its memory traffic sets at the measured copy bandwidth.
Prints a table and writes benchmarks/results/speed_gowalla.json.
"""

from __future__ import annotations

import argparse
import functools
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
from tuner.recsys.models.graph import propagate
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


def _memory_bandwidth(device, megabytes: int = 512) -> float:
    """Bytes per second of a large tensor copy (read + write), the machine's streaming bandwidth."""
    source = torch.empty(megabytes * 2**18, device=device)
    target = torch.empty_like(source)
    seconds, _ = _median_seconds(lambda: target.copy_(source), 5, device)
    return 2 * source.numel() * 4 / seconds


def _step_breakdown(trainer: Trainer, batches: int) -> dict[str, float]:
    """Milliseconds per batch in each part of an optimisation step, synchronised at every boundary (so on CUDA the
    parts add up to a little more than an unsynchronised step)."""
    users, pos, neg = (torch.from_numpy(a).to(trainer.device) for a in trainer.sampler.sample(np.random.default_rng(0)))
    bs, device, model = trainer.hp.batch_size, trainer.device, trainer.model
    parts = {"forward propagation": 0.0, "loss": 0.0, "backward": 0.0, "optimizer": 0.0}

    def timed(name, fn):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        parts[name] += time.perf_counter() - start
        return out

    for b in range(batches):
        u, p, n = (t[b * bs : (b + 1) * bs] for t in (users, pos, neg))
        users_emb, items_emb = timed("forward propagation", model)

        loss, _ = timed("loss", lambda: trainer._loss(users_emb, items_emb, u, p, n))  # noqa: B023 - called at once
        timed("backward", loss.backward)
        timed("optimizer", lambda: (trainer.optimizer.step(), trainer.optimizer.zero_grad(set_to_none=True)))
    return {name: 1000 * seconds / batches for name, seconds in parts.items()}


def _spmm_and_limits(trainer: Trainer, bandwidth: float, repeats: int) -> dict[str, float]:
    """One SpMM Â X alone, and the bandwidth limit of a step: the time its unavoidable memory traffic takes at
    `bandwidth` if every byte moved once — six products that each stream Â once, read X once and write the result
    once (a perfect cache for the gathered rows), and one fused Adam pass (parameter, gradient and two moments read,
    three written). A lower bound: real gathers miss the cache."""
    model, device = trainer.model, trainer.device
    adjacency = model.get_buffer("adjacency")
    x = model.ego_embeddings().detach()
    spmm, _ = _median_seconds(lambda: adjacency @ x, max(repeats, 5), device)
    nnz, (n, d) = adjacency._nnz(), x.shape
    index_bytes = adjacency.col_indices().element_size()
    spmm_bytes = nnz * (index_bytes + 4) + (n + 1) * index_bytes + 2 * n * d * 4
    parameters = sum(p.numel() for p in model.parameters())
    adam_bytes = parameters * 4 * 7
    return {
        "spmm_ms": 1000 * spmm,
        "spmm_limit_ms": 1000 * spmm_bytes / bandwidth,
        "step_limit_ms": 1000 * (6 * spmm_bytes + adam_bytes) / bandwidth,
    }


def _kernels_per_step(trainer: Trainer, batches: int = 5) -> float | None:
    """CUDA kernels launched per optimisation step (torch profiler); None on CPU. At a few microseconds per launch,
    this times the launch limit of a step."""
    if trainer.device.type != "cuda":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        _partial_epoch_seconds(trainer, batches)
    return sum(event.count for event in trace.key_averages() if event.device_type == DeviceType.CUDA) / batches


def _layer_by_layer(product, adjacency, x, layers):
    total = x
    for _ in range(layers):
        x = product(adjacency, x)
        total = total + x
    return total


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

    # side by side, the same batches: tuner's propagation (Horner's rule, fused sparse addmm, symmetric backward);
    # layer by layer with the symmetric SpMM (tuner before); layer by layer with PyTorch's generic sparse backward
    ours = _partial_epoch_seconds(trainer, args.compare_batches)
    original = lightgcn_module.power_sum
    try:
        lightgcn_module.power_sum = functools.partial(_layer_by_layer, propagate)
        layered = _partial_epoch_seconds(trainer, args.compare_batches)
        lightgcn_module.power_sum = functools.partial(_layer_by_layer, lambda adjacency, x: adjacency @ x)
        generic = _partial_epoch_seconds(trainer, args.compare_batches)
    finally:
        lightgcn_module.power_sum = original

    bandwidth = _memory_bandwidth(device)
    breakdown = _step_breakdown(trainer, args.compare_batches)
    limits = _spmm_and_limits(trainer, bandwidth, args.repeats)
    step_ms = sum(breakdown.values())
    batches = -(-len(trainer.sampler.sample(np.random.default_rng(0))[0]) // hp.batch_size)
    parts_ms = {
        "SpMM (6 per step)": 6 * limits["spmm_ms"],
        "rest of propagation, forward and backward": breakdown["forward propagation"] + breakdown["backward"]
        - 6 * limits["spmm_ms"],
        "loss": breakdown["loss"],
        "optimizer (Adam, zero_grad)": breakdown["optimizer"],
        "sampling (per batch)": 1000 * sample_median / batches,
    }
    print(f"\nper batch, {args.compare_batches} batches ({device}, {args.threads} threads):")
    for name, ms in parts_ms.items():
        print(f"  {name:45s} {ms:8.2f} ms  {100 * ms / sum(parts_ms.values()):5.1f} %")
    print(f"  copy bandwidth {bandwidth / 1e9:.1f} GB/s; one SpMM {limits['spmm_ms']:.2f} ms = "
          f"{limits['spmm_ms'] / limits['spmm_limit_ms']:.1f}x its bandwidth limit ({limits['spmm_limit_ms']:.2f} ms)")
    print(f"  bandwidth limit of a step {limits['step_limit_ms']:.1f} ms; measured {step_ms:.1f} ms "
          f"= {step_ms / limits['step_limit_ms']:.1f}x the limit")

    kernels = _kernels_per_step(trainer)
    if kernels is not None:
        print(f"  {kernels:.0f} CUDA kernels per step: {kernels * 5e-3:.2f} ms at 5 µs per launch")

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
        "power_sum_seconds": ours,
        "layer_by_layer_symmetric_spmm_seconds": layered,
        "layer_by_layer_generic_backward_seconds": generic,
        "layered_over_power_sum": layered / ours,
        "generic_over_power_sum": generic / ours,
        "breakdown_ms_per_batch": parts_ms,
        "copy_bandwidth_gb_per_s": bandwidth / 1e9,
        **limits,
        "step_ms": step_ms,
        "step_over_limit": step_ms / limits["step_limit_ms"],
        "cuda_kernels_per_step": kernels,
        "peak_rss_gib": peak_rss_gib,
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
