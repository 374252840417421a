"""How long `tuner report` takes on a large experiment: 200 trials x 100 epochs of synthetic records
(20,000 parquet files). Run by hand:  python benchmarks/report_speed.py  (target: <= 20 s on 2 cores)
Writes benchmarks/results/report_speed.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tuner.experiment import records
from tuner.experiment.layout import save_spec
from tuner.spec import validate_spec
from tuner.vocabulary import metric_columns


def make_experiment(directory: Path, trials: int, epochs: int) -> None:
    spec = validate_spec(
        {
            "name": directory.name,
            "model": "lightgcn",
            "dataset": {"name": "synthetic"},
            "metric": "val/recall@20",
            "fixed": {"epochs": epochs, "eval_every": 1},
            "params": {
                "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
                "num_layers": {"type": "int", "low": 1, "high": 4},
            },
            "search": {"num_samples": trials},
            "storage": str(directory.parent),
        },
        "benchmark",
    )
    save_spec(str(directory), spec)
    rng = np.random.default_rng(0)
    metric_names = metric_columns(spec.fixed.k)
    for t in range(trials):
        hp = spec.trial_hyperparameters({"lr": float(10 ** rng.uniform(-4, -1)), "embedding_dim": int(rng.choice([32, 64, 128])),
                                         "num_layers": int(rng.integers(1, 5))})
        writer = records.RecordWriter(str(directory), f"trial{t:04d}", spec.fixed.k)
        identity = records.TrialIdentity(experiment=directory.name, trial_id=f"trial{t:04d}", attempt=1, model="lightgcn",
                                         dataset="synthetic", split_hash="0" * 16, seed=0, device="cpu",
                                         trial_started=float(t), params=records.param_values(hp))
        ceiling = rng.uniform(0.1, 0.4)
        for epoch in range(1, epochs + 1):
            level = ceiling * (1 - np.exp(-epoch / 20))
            writer.write(records.EpochRecord(
                identity, epoch=epoch, status="ended" if epoch == epochs else "running",
                stop_reason="finished" if epoch == epochs else None, loss=1 / epoch, bpr_loss=1 / epoch,
                epoch_seconds=1.0, sample_seconds=0.1, eval_seconds=0.1, cumulative_seconds=float(epoch),
                evaluated=True, metrics={name: level * rng.uniform(0.9, 1.1) for name in metric_names},
            ))
        writer.compact()  # as tuner does when a trial ends


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "report_speed.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "big"
        start = time.perf_counter()
        make_experiment(directory, args.trials, args.epochs)
        generate_seconds = time.perf_counter() - start
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "tuner", "report", str(directory)], capture_output=True, text=True)
        report_seconds = time.perf_counter() - start
        if completed.returncode != 0:
            sys.exit(completed.stderr)
    result = {"trials": args.trials, "epochs": args.epochs, "record_files": args.trials * args.epochs,
              "generate_seconds": generate_seconds, "tuner_report_seconds": report_seconds}
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
