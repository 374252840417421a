"""Measured learning curves, the evidence for a spec's ASHA grace period and evaluation cadence: how well the
validation value at epoch e ranks configurations by the best validation value they reach in the full budget.

Runs the spec with random sampling and no scheduler (every trial trains every epoch, evaluated every
`--eval-every` epochs), then prints, per evaluated epoch e, the Spearman rank correlation between the trials'
validation value at e and their best over all epochs, and whether the eventual best trial is in the top third at e
(what ASHA with reduction factor 3 keeps at a rung at e).

Run by hand:  python benchmarks/learning_curves.py --data-dir ../shared/data --spec search_spaces/mf.yaml \\
                  --trials 24 --eval-every 1
Writes benchmarks/results/learning_curves_<spec name>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tuner.experiment.read import Experiment

    document = yaml.safe_load(Path(args.spec).read_text())
    document["search"] = {"sampler": "random", "num_samples": args.trials, "seed": args.seed}
    document["scheduler"] = {"kind": "none"}
    document["fixed"]["eval_every"] = args.eval_every
    if args.epochs:
        document["fixed"]["epochs"] = args.epochs
    document["storage"] = tempfile.mkdtemp(prefix="curves-")
    document.pop("baselines", None)
    spec_file = Path(document["storage"]) / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(document))
    subprocess.run([sys.executable, "-m", "tuner", "run", str(spec_file), "--data-dir", args.data_dir], check=True,
                   stdout=subprocess.DEVNULL)

    experiment = Experiment.open(str(Path(document["storage"]) / document["name"]))
    metric = experiment.spec.metric
    sign = 1 if experiment.spec.mode == "max" else -1
    curves = experiment.records.dropna(subset=[metric]).pivot_table(index="trial_id", columns="epoch", values=metric)
    best = curves.max(axis=1) if sign > 0 else curves.min(axis=1)
    winner = (sign * best).idxmax()
    rows = []
    for epoch in curves.columns:
        at = curves[epoch]
        rank_at = (sign * at).rank(ascending=False)
        rows.append({"epoch": int(epoch), "spearman": round(float(at.corr(best, method="spearman")), 3),
                     "winner_rank": int(rank_at[winner]), "trials": int(at.notna().sum())})
    payload = {"spec": args.spec, "trials": args.trials, "eval_every": args.eval_every, "metric": metric,
               "best": {trial: float(value) for trial, value in best.items()},
               "best_epoch": {trial: int((sign * curves.loc[trial]).idxmax()) for trial in curves.index},
               "by_epoch": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"learning_curves_{document['name']}.json").write_text(json.dumps(payload, indent=2))
    print(f"{'epoch':>5} {'spearman':>8} {'winner rank':>11} (of {len(curves)})")
    for row in rows:
        print(f"{row['epoch']:>5} {row['spearman']:>8.3f} {row['winner_rank']:>11}")
    print("best epochs:", sorted(payload["best_epoch"].values()))


if __name__ == "__main__":
    main()
