"""Does parallelism pay? The same 8 fixed configurations (ML-100K, LightGCN, 10 epochs) three ways, in one run:
  1. `tuner run` (a subprocess, as a user runs it: Python and Ray start-up included), `--concurrency` trials at
     once (default: what `resources: auto` picks, one CPU per trial and every core);
  2. a plain sequential loop over tuner.recsys.training.Trainer in this process, 1 torch thread (one trial's resources);
  3. the same loop with torch's default threads (every core, through intra-op parallelism).
Reports the wall times, the ratios tuner / loop, and how tuner's wall time splits: trial compute (the epochs' own
seconds from the records, divided over the concurrent trials), the fixed cost stage by stage (command start ->
first epoch, last epoch -> exit, from the run's $TUNER_TIMELINE), and the rest (trials ending unevenly, hand-overs).

Run by hand:  python benchmarks/tuning_overhead.py --data-dir ../shared/data [--epochs 10] [--concurrency N]
Writes benchmarks/results/tuning_overhead_<epochs>_epochs.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from tuner import timeline
from tuner.experiment.records import load
from tuner.recsys.data import prepare
from tuner.recsys.training import Trainer, build_model_for
from tuner.spec import ExperimentSpec, validate_spec

GRID = {"lr": [0.001, 0.002, 0.005, 0.01], "embedding_dim": [32, 64]}


def spec_document(storage: str, epochs: int = 10, concurrency: int | str = "auto") -> dict:
    return {
        "name": "overhead",
        "model": "lightgcn",
        "dataset": {"name": "movielens-100k", "split": {"kind": "random", "test": 0.2, "val": 0.1, "seed": 0}},
        "fixed": {"num_layers": 3, "batch_size": 1024, "epochs": epochs, "eval_every": 5, "k": [20]},
        "metric": "val/recall@20",
        "params": {name: {"type": "categorical", "choices": values} for name, values in GRID.items()},
        "search": {"sampler": "grid", "max_concurrent": concurrency},
        "scheduler": {"kind": "none"},
        "storage": storage,
    }


def fixed_cost_stages(events: list[dict], launched: float, exited: float) -> dict:
    """Seconds of each start-up and wind-down stage of one `tuner run`, from its timeline."""
    first = {}
    for event in events:
        first.setdefault(event["event"], event["t"])
    first_epoch = first["trial_ready"]  # the first trial's model is built: from here on it computes
    last_epoch = max(e["t"] for e in events if e["event"] == "epoch_end")
    return {
        "python_and_imports": first["command_start"] - launched,
        "read_spec": first["driver_ready"] - first["command_start"],
        "ray_start_while_importing_and_preparing_data": first["ray_ready"] - first["driver_ready"],
        "tune_setup": first["fit_start"] - first["ray_ready"],
        "worker_start_and_imports": first["trial_start"] - first["fit_start"],
        "first_trial_setup": first_epoch - first["trial_start"],
        "command_start_to_first_epoch": first_epoch - launched,
        "last_epoch_to_tune_done": first["fit_end"] - last_epoch,
        "settle_and_export": first["settled"] - first["fit_end"],
        "summary_ray_shutdown_and_exit": exited - first["settled"],
        "last_epoch_to_exit": exited - last_epoch,
    }


def sequential_loop(spec: ExperimentSpec, data_dir: str, threads: int) -> float:
    """Wall seconds to train every configuration one after another with `threads` torch threads."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    data = prepare(spec.dataset, data_dir)
    for values in itertools.product(*GRID.values()):
        hp = spec.trial_hyperparameters(dict(zip(GRID, values)))
        for _ in Trainer(build_model_for(spec.model, data, hp), data, hp).run():
            pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--concurrency", default="auto", help="trials at once (default: what resources: auto picks)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    concurrency = args.concurrency if args.concurrency == "auto" else int(args.concurrency)
    out = args.out or str(Path(__file__).parent / "results" / f"tuning_overhead_{args.epochs}_epochs.json")
    default_threads = torch.get_num_threads()

    with tempfile.TemporaryDirectory() as scratch:
        document = spec_document(os.path.join(scratch, "runs"), args.epochs, concurrency)
        spec_path = Path(scratch) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(document))
        spec = validate_spec(document, "overhead")
        prepare(spec.dataset, args.data_dir)  # every way starts from the cached split

        timeline_file = Path(scratch) / "timeline.jsonl"
        launched = time.time()
        completed = subprocess.run(
            [sys.executable, "-m", "tuner", "run", str(spec_path), "--data-dir", args.data_dir],
            check=False, capture_output=True, text=True, env={**os.environ, timeline.ENV: str(timeline_file)},
        )
        exited = time.time()
        tuner_seconds = exited - launched
        if completed.returncode != 0:
            sys.exit(f"tuner run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        concurrent_trials = int(re.search(r"(\d+) trials? at once", completed.stdout).group(1))
        stages = fixed_cost_stages(timeline.read(str(timeline_file)), launched, exited)
        records = load(os.path.join(scratch, "runs", "overhead"))
        trial_compute = records.groupby("trial_id")["cumulative_seconds"].max().sum() / concurrent_trials

        # torch.optim imports torch._dynamo (~1 s) on its first optimizer; pay that before either loop is timed
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        loop_one_thread = sequential_loop(spec, args.data_dir, threads=1)
        loop_default_threads = sequential_loop(spec, args.data_dir, threads=default_threads)

    fixed_cost = stages["command_start_to_first_epoch"] + stages["last_epoch_to_exit"]
    result = {
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
                   f"CUDA {'yes' if torch.cuda.is_available() else 'no'}",
        "configurations": len(list(itertools.product(*GRID.values()))),
        "epochs": args.epochs,
        "concurrent_trials": concurrent_trials,
        "tuner_run_seconds": tuner_seconds,
        "tuner_trial_compute_seconds": trial_compute,
        "tuner_fixed_cost_seconds": fixed_cost,
        "tuner_other_seconds": tuner_seconds - trial_compute - fixed_cost,
        "fixed_cost_stages_seconds": stages,
        "loop_1_thread_seconds": loop_one_thread,
        f"loop_{default_threads}_threads_seconds": loop_default_threads,
        "tuner_over_loop_1_thread": tuner_seconds / loop_one_thread,
        f"tuner_over_loop_{default_threads}_threads": tuner_seconds / loop_default_threads,
        f"trial_compute_over_loop_{default_threads}_threads": trial_compute / loop_default_threads,
    }
    print(json.dumps(result, indent=2))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
