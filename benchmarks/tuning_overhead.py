"""Does parallelism pay? The same 8 fixed configurations (ML-100K, LightGCN, 10 epochs) two ways, in one run:
  1. `tuner run` (a subprocess, as a user runs it: Ray start-up included), 2 concurrent trials of 1 CPU each;
  2. a plain sequential loop over tuner.training.fit in this process (torch's default threads).
Reports both wall times and their ratio (target: tuner <= 0.65 x loop).

Run by hand:  python benchmarks/tuning_overhead.py --data-dir ../shared/data [--epochs 10]
Writes benchmarks/results/tuning_overhead_<epochs>_epochs.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from tuner.data import prepare
from tuner.models import build_model
from tuner.spec import validate_spec
from tuner.training import fit

GRID = {"lr": [0.001, 0.002, 0.005, 0.01], "embedding_dim": [32, 64]}


def spec_document(storage: str, epochs: int = 10) -> dict:
    return {
        "name": "overhead",
        "model": "lightgcn",
        "dataset": {"name": "movielens-100k", "split": {"kind": "random", "test": 0.2, "val": 0.1, "seed": 0}},
        "fixed": {"num_layers": 3, "batch_size": 1024, "epochs": epochs, "eval_every": 5, "k": [20]},
        "metric": "val/recall@20",
        "params": {name: {"type": "categorical", "choices": values} for name, values in GRID.items()},
        "search": {"sampler": "grid", "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "resources": {"cpu": 1},
        "storage": storage,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or str(Path(__file__).parent / "results" / f"tuning_overhead_{args.epochs}_epochs.json")

    with tempfile.TemporaryDirectory() as scratch:
        document = spec_document(os.path.join(scratch, "runs"), args.epochs)
        spec_path = Path(scratch) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(document))
        spec = validate_spec(document, "overhead")
        prepare(spec.dataset, args.data_dir)  # both ways start from the cached split

        start = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "tuner", "run", str(spec_path), "--data-dir", args.data_dir],
            capture_output=True, text=True,
        )
        tuner_seconds = time.perf_counter() - start
        if completed.returncode != 0:
            sys.exit(f"tuner run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")

        start = time.perf_counter()
        data = prepare(spec.dataset, args.data_dir)
        for values in itertools.product(*GRID.values()):
            hp = spec.trial_hyperparameters(dict(zip(GRID, values)))
            torch.manual_seed(hp.seed)
            model = build_model(spec.model, data.num_users, data.num_items, torch.tensor(data.train), **hp.model_dump())
            for _ in fit(model, data, hp):
                pass
        loop_seconds = time.perf_counter() - start

    result = {
        "configurations": 8,
        "epochs": args.epochs,
        "tuner_run_seconds": tuner_seconds,
        "sequential_loop_seconds": loop_seconds,
        "tuner_over_loop": tuner_seconds / loop_seconds,
        "torch_threads_in_loop": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
