"""Quality on MovieLens 100K: 80/20 random split of all ratings, 10 % of train as validation.

Run by hand:  python benchmarks/quality_ml100k.py --data-dir ../shared/data [--threads 2]

Trains LightGCN (64-dim, 3 layers), NGCF and MF with `tuner train`'s code path, selects each at its
best-validation epoch, and puts MostPop beside them on the same split. Published on this protocol:
LightGCN recall@20 0.3535 / precision@20 0.2397, NGCF 0.3136 / 0.2134.
Writes benchmarks/results/quality_ml100k.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tuner.spec import validate_spec
from tuner.train_command import train

DATASET = {"name": "movielens-100k", "split": {"kind": "random", "test": 0.2, "val": 0.1, "seed": 0}}
COMMON = {"embedding_dim": 64, "batch_size": 1024, "epochs": 100, "eval_every": 5, "k": [20]}
CONFIGS = {
    "lightgcn": {"num_layers": 3, "lr": 0.005, "weight_decay": 1e-3},  # samples_per_user: one per edge
    "ngcf": {"num_layers": 3, "lr": 0.001, "weight_decay": 1e-4, "dropout": 0.1},
    "mf": {"lr": 0.001, "weight_decay": 1e-2},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "quality_ml100k.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = {}
    most_popular = None
    for model, config in CONFIGS.items():
        spec = validate_spec(
            {"name": f"quality-{model}", "model": model, "dataset": DATASET, "fixed": {**COMMON, **config}}, model
        )
        outcome = train(spec, Path(args.data_dir), device="cpu")
        best = outcome.best.metrics
        rows[model] = {
            "config": config,
            "best_epoch": outcome.best.epoch,
            "test/recall@20": best["test/recall@20"],
            "test/precision@20": best["test/precision@20"],
            "test/ndcg@20": best["test/ndcg@20"],
            "val/recall@20": best["val/recall@20"],
            "train_seconds": sum(r.train_seconds for r in outcome.epochs),
        }
        most_popular = outcome.most_popular
        print(model, json.dumps(rows[model]), flush=True)
    rows["mostpop"] = {key: most_popular[key] for key in ("test/recall@20", "test/precision@20", "test/ndcg@20")}
    print(f"\n{'model':<10}{'test recall@20':>16}{'test precision@20':>19}{'test ndcg@20':>14}{'best epoch':>12}")
    for model, row in rows.items():
        print(f"{model:<10}{row['test/recall@20']:>16.4f}{row['test/precision@20']:>19.4f}"
              f"{row['test/ndcg@20']:>14.4f}{row.get('best_epoch', ''):>12}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
