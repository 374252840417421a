"""What a trial builds before its first epoch, on a worker's first trial and on the next ones (which reuse what
depends only on the dataset: the training tensor, the normalised adjacency, the evaluator). Same process, same
calls as tuner.tuning.trainable.train_trial, LightGCN on a real dataset (default Gowalla: 29,858 users, 40,981 items).

Run by hand:  python benchmarks/trial_setup.py --data-dir ../shared/data [--dataset gowalla] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from tuner.recsys.data import prepare
from tuner.recsys.models import build_model
from tuner.recsys.training import Trainer
from tuner.spec import validate_spec
from tuner.tuning import trainable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one trial's CPU
    split = {"kind": "given", "test": 0.2, "val": 0.1, "seed": 0}
    spec = validate_spec({"name": "setup", "model": "lightgcn", "dataset": {"name": args.dataset, "split": split}}, "setup")
    data = prepare(spec.dataset, args.data_dir)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer's torch._dynamo import, paid once
    seconds = {"without_reuse": [], "with_reuse": []}
    for reuse in (False, True):
        for _ in range(args.trials):
            if not reuse:
                trainable._shared.clear()
            start = time.perf_counter()
            hp = spec.trial_hyperparameters({})
            train, adjacency, evaluator = trainable._dataset_structures(
                spec.model, data, hp.k, hp.eval_batch_size, torch.device("cpu")
            )
            model = build_model(spec.model, data.num_users, data.num_items, train, adjacency, **hp.model_dump())
            Trainer(model, data, hp, "cpu", evaluator)
            seconds["with_reuse" if reuse else "without_reuse"].append(time.perf_counter() - start)
    result = {
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, 1 torch thread",
        "dataset": data.summary(),
        "trial_setup_seconds": seconds,
        "median_without_reuse": sorted(seconds["without_reuse"])[args.trials // 2],
        "median_with_reuse": sorted(seconds["with_reuse"])[args.trials // 2],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
