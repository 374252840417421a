"""Time to a trustworthy answer: the anytime curve of a search — wall time since the command started against the
test quality of the configuration the search would return at that moment (its best *finished* trial by validation,
read at that trial's best-validation epoch) — for three contenders on the same spec, data, machine and cores:

  tuner    `tuner run SPEC` as shipped (a subprocess: Python and Ray start-up included);
  optuna   the script a researcher writes: one process, TPE + Hyperband pruner on the same Trainer, n_jobs = cores
           (torch at 1 thread per trial), a journal storage — its own start-up included;
  raytune  Ray Tune as a Ray user writes it: OptunaSearch + ASHAScheduler at Ray's defaults, one CPU per trial.

Every contender gets the spec's search space, its trial count and epoch budget (`--trials`, `--epochs` shrink both
alike) and evaluates every `eval_every` epochs. Each runs once per search seed; the report gives, per contender, the
median over seeds of the time to come within `--tolerance` of the best validation-selected test value any run
reached, and the quality at 25 %, 50 % and 100 % of tuner's median wall time, plus a plot of the curves.

Run by hand:  python benchmarks/time_to_quality.py --data-dir ../shared/data --spec search_spaces/mf.yaml \\
                  --seeds 0 1 2 [--trials 16] [--epochs 40] [--only tuner optuna raytune]
Writes benchmarks/results/time_to_quality_<spec name>.json and .png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

RESULTS = Path(__file__).resolve().parent / "results"
CONTENDERS = ("tuner", "optuna", "raytune")


# ---- the race's spec -------------------------------------------------------------------------------------------


def race_spec(path: str, trials: int | None, epochs: int | None, seed: int, storage: str,
              dataset: str | None = None) -> dict:
    """The spec as shipped, with the race's budget (the same for every contender) and this search seed. Fewer epochs
    than shipped shrink ASHA's grace period in proportion. `dataset`: another named dataset (a held-out check)."""
    document = yaml.safe_load(Path(path).read_text())
    if dataset is not None:
        document["dataset"]["name"] = dataset
        document["name"] = f"{document['name']}-on-{dataset}"
    document.setdefault("search", {})["seed"] = seed
    if trials is not None:
        document["search"]["num_samples"] = trials
    shipped_epochs = document.setdefault("fixed", {}).get("epochs", 100)
    if epochs is not None:
        document["fixed"]["epochs"] = epochs
        scheduler = document.get("scheduler") or {}
        if scheduler.get("kind", "asha") == "asha":
            scheduler["grace_period"] = max(1, round(scheduler.get("grace_period", 10) * epochs / shipped_epochs))
            document["scheduler"] = scheduler
    document["storage"] = storage
    document.pop("baselines", None)
    return document


def _answer_curve(ends: list[tuple[float, bool, float, float]]) -> list[tuple[float, float]]:
    """(seconds, test value of the answer) each time the answer changes: `ends` holds (seconds, finished, val, test)
    per trial; the answer is the finished trial with the best validation value so far."""
    curve, best_val = [], None
    for seconds, finished, val, test in sorted(ends):
        if finished and (best_val is None or val > best_val):
            best_val = val
            curve.append((seconds, test))
    return curve


# ---- contenders: each returns (wall seconds of the whole command, [(seconds, finished, val, test) per trial]) ------


def run_tuner(spec: dict, data_dir: str, metric_test: str, source: str | None = None) -> tuple[float, list]:
    """`source`: another checkout of tuner to run (its code, and the spec file at the same path in it)."""
    from tuner import timeline
    from tuner.experiment.read import Experiment

    folder = Path(tempfile.mkdtemp(prefix="race-tuner-"))
    spec_file = folder / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    events_file = folder / "timeline.jsonl"
    env = {**os.environ, timeline.ENV: str(events_file)}
    started = time.time()
    if source:
        env["PYTHONPATH"] = source
    subprocess.run([sys.executable, "-m", "tuner", "run", str(spec_file), "--data-dir", os.path.abspath(data_dir)],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=source)
    wall = time.time() - started
    last_epoch: dict[str, float] = {}
    for event in timeline.read(str(events_file)):
        if event["event"] == "epoch_end":
            last_epoch[event["trial_id"]] = max(last_epoch.get(event["trial_id"], 0.0), event["t"])
    trials = Experiment.open(str(Path(spec["storage"]) / spec["name"])).trials
    ends = [(last_epoch[row["trial_id"]] - started, row["stop_reason"] == "finished", row[spec["metric"]],
             row[metric_test]) for _, row in trials.iterrows() if row["trial_id"] in last_epoch]
    return wall, ends


def run_in_subprocess(contender: str, spec: dict, data_dir: str, metric_test: str) -> tuple[float, list]:
    """The plain Optuna and plain Ray Tune scripts run as their own command (their start-up counts too)."""
    folder = Path(tempfile.mkdtemp(prefix=f"race-{contender}-"))
    (folder / "spec.json").write_text(json.dumps(spec))
    started = time.time()
    subprocess.run([sys.executable, __file__, "--contender", contender, "--spec-json", str(folder / "spec.json"),
                    "--data-dir", data_dir, "--out", str(folder / "ends.json"), "--started", repr(started)],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - started
    return wall, [tuple(end) for end in json.loads((folder / "ends.json").read_text())]


def _setup(spec_json: str, data_dir: str):
    from tuner.recsys.data import prepare
    from tuner.spec import validate_spec

    spec = validate_spec(json.loads(Path(spec_json).read_text()), spec_json)
    return spec, prepare(spec.dataset, data_dir)


def _train(spec, data, hp, on_evaluated):
    """Train one configuration with tuner's Trainer; on_evaluated(epoch, val, best val, test at the best-validation
    epoch so far) may return True to stop it. Returns (finished, best val, test at the best-validation epoch)."""
    import torch

    from tuner.recsys.selection import BestEpoch
    from tuner.recsys.training import Trainer, build_model_for
    from tuner.vocabulary import metric_key, parse_metric_key, users_key

    key = parse_metric_key(spec.metric)
    test_key = metric_key("test", key.metric, key.k)
    torch.manual_seed(hp.seed)
    trainer = Trainer(build_model_for(spec.model, data, hp), data, hp)
    best, test_at_best = BestEpoch(spec.mode), float("nan")
    for result in trainer.run():
        if not result.evaluated:
            continue
        if best.offer(result.epoch, result.metrics[spec.metric], result.metrics[users_key(key.split)]):
            test_at_best = result.metrics[test_key]
        if on_evaluated(result.epoch, result.metrics[spec.metric], best.value, test_at_best):
            return False, best.value, test_at_best
    return trainer.epochs_done == hp.epochs, best.value, test_at_best


def plain_optuna(spec_json: str, data_dir: str, out: str, started: float) -> None:
    import optuna
    import torch

    from tuner.experiment.study_export import optuna_distribution

    torch.set_num_threads(1)
    spec, data = _setup(spec_json, data_dir)
    ends: list = []
    # the researcher's own choice, not tuner's: the first rung at a quarter of the epochs
    pruner = optuna.pruners.HyperbandPruner(min_resource=max(1, spec.fixed.epochs // 4), max_resource=spec.fixed.epochs,
                                            reduction_factor=3)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(f"{out}.journal"))
    study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize", storage=storage,
                                sampler=optuna.samplers.TPESampler(seed=spec.search.seed), pruner=pruner)
    distributions = {name: optuna_distribution(param) for name, param in spec.searched().items()}

    def suggest(trial: optuna.Trial, name: str, distribution):
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(name, distribution.choices)
        if isinstance(distribution, optuna.distributions.IntDistribution):
            return trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step,
                                     log=distribution.log)
        return trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step,
                                   log=distribution.log)

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, distribution) for name, distribution in distributions.items()}
        hp = spec.trial_hyperparameters(params)

        def report(epoch: int, value: float, best: float, test: float) -> bool:
            trial.report(value, epoch)
            return trial.should_prune()

        finished, val, test = _train(spec, data, hp, report)
        ends.append((time.time() - started, finished, val, test))
        if not finished:
            raise optuna.TrialPruned()
        return val

    study.optimize(objective, n_trials=spec.search.num_samples, n_jobs=os.cpu_count() or 1)
    Path(out).write_text(json.dumps(ends))


def plain_ray_tune(spec_json: str, data_dir: str, out: str, started: float) -> None:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from tuner.experiment.study_export import optuna_distribution

    spec, data = _setup(spec_json, data_dir)
    ray.init(include_dashboard=False, log_to_driver=False)
    data_ref = ray.put(data)
    space = {name: optuna_distribution(param) for name, param in spec.searched().items()}
    ends: list = []

    def trainable(config):
        import torch

        torch.set_num_threads(1)
        hp = spec.trial_hyperparameters(config)

        def report(epoch: int, value: float, best: float, test: float) -> bool:
            # what the callback reads when the trial ends (ASHA ends it at a report, the last one included)
            tune.report({spec.metric: value, "epoch": epoch, "best": best, "test": test, "finished": epoch == hp.epochs})
            return False  # ASHA stops the trial by ending this function

        _train(spec, ray.get(data_ref), hp, report)

    class Ends(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            result = trial.last_result or {}
            ends.append((time.time() - started, bool(result.get("finished")), result.get("best"),
                         result.get("test", float("nan"))))

        def on_trial_error(self, iteration, trials, trial, **info):
            ends.append((time.time() - started, False, None, float("nan")))

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(space=space, metric=spec.metric, mode=spec.mode, seed=spec.search.seed),
            # Ray's defaults (grace period 1, reduction factor 4), in epochs: a report per evaluated epoch
            scheduler=ASHAScheduler(metric=spec.metric, mode=spec.mode, time_attr="epoch", max_t=spec.fixed.epochs),
            num_samples=spec.search.num_samples,
        ),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="race-ray-"), callbacks=[Ends()], verbose=0),
    )
    tuner.fit()
    ray.shutdown()
    Path(out).write_text(json.dumps(ends))


# ---- the race ---------------------------------------------------------------------------------------------------


def quality_at(curve: list[tuple[float, float]], seconds: float) -> float | None:
    reached = [test for at, test in curve if at <= seconds]
    return reached[-1] if reached else None


def time_to(curve: list[tuple[float, float]], line: float) -> float | None:
    return next((at for at, test in curve if test >= line), None)


def summarize(runs: dict[str, list[dict]], tolerance: float) -> dict:
    """Per contender: the median over seeds of the time to the line (a run that never reached it counts as never:
    the median is None when most runs did not), and of the quality at 25/50/100 % of tuner's median wall time."""
    finals = [run["curve"][-1][1] for contender in runs.values() for run in contender if run["curve"]]
    line = max(finals) - tolerance
    reference = next((runs[c] for c in runs if c == "tuner"), None) or next(
        (runs[c] for c in runs if c.startswith("tuner")), None)  # tuner as it stands, else the first tuner@NAME
    tuner_wall = statistics.median(run["wall"] for run in reference) if reference else None
    table = {}
    for contender, contender_runs in runs.items():
        times = [time_to(run["curve"], line) for run in contender_runs]
        median_time = statistics.median(math.inf if t is None else t for t in times)
        row = {"runs": len(contender_runs), "median wall s": statistics.median(run["wall"] for run in contender_runs),
               "median s to the line": None if math.isinf(median_time) else median_time,
               "runs that reached the line": sum(t is not None for t in times),
               "median final test": statistics.median(run["curve"][-1][1] for run in contender_runs if run["curve"])}
        if tuner_wall:
            for share in (0.25, 0.5, 1.0):
                values = [quality_at(run["curve"], share * tuner_wall) for run in contender_runs]
                known = [v for v in values if v is not None]
                row[f"median test at {int(share * 100)} % of tuner's time"] = statistics.median(known) if known else None
        table[contender] = row
    optuna_time = (table.get("optuna") or {}).get("median s to the line")
    for row in table.values():
        mine = row["median s to the line"]
        row["time to the line / plain Optuna's"] = mine / optuna_time if mine is not None and optuna_time else None
    return {"line": line, "tolerance": tolerance, "tuner median wall s": tuner_wall, "table": table}


def plot(runs: dict[str, list[dict]], line: float, path: Path, title: str) -> None:
    """Per contender, the median over seeds of the answer's test value at each moment (a seed without an answer yet
    counts as none) and a band from the worst to the best seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(7.5, 4))
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:grey")
    for color, (contender, contender_runs) in zip(colors, runs.items()):
        end = max(run["wall"] for run in contender_runs)
        grid = np.linspace(0, end, 400)
        values = np.array([[np.nan if (q := quality_at(run["curve"], t)) is None or t > run["wall"] else q for t in grid]
                           for run in contender_runs])
        known = ~np.isnan(values).all(axis=0)
        with np.errstate(all="ignore"):
            median = np.nanmedian(np.where(np.isnan(values), -np.inf, values), axis=0)
        median[~known | ~np.isfinite(median)] = np.nan
        axis.plot(grid, median, color=color, label=f"{contender} (median of {len(contender_runs)} seeds)")
        axis.fill_between(grid, np.nanmin(values, axis=0, initial=np.inf, where=~np.isnan(values)),
                          np.nanmax(values, axis=0, initial=-np.inf, where=~np.isnan(values)),
                          where=known, color=color, alpha=0.15, linewidth=0)
    axis.axhline(line, color="grey", linestyle="--", linewidth=1, label="the line: best final value - tolerance")
    axis.set_xlabel("seconds since the command started")
    axis.set_ylabel("test value of the answer so far")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--dataset", help="run the spec on another named dataset (one not used to choose defaults)")
    parser.add_argument("--replot", help="a results JSON this script wrote: summarise and plot it again, run nothing")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--tuner-from", nargs="+", default=[], metavar="NAME=DIR",
                        help="also race tuner as another checkout has it (its code and its spec file), as tuner@NAME")
    # internal: one contender's own process
    parser.add_argument("--contender", choices=("optuna", "raytune"))
    parser.add_argument("--spec-json")
    parser.add_argument("--out")
    parser.add_argument("--started", type=float)
    args = parser.parse_args()
    if args.contender:
        run = plain_optuna if args.contender == "optuna" else plain_ray_tune
        run(args.spec_json, args.data_dir, args.out, args.started)
        return

    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        summary = summarize(saved["runs"], saved["tolerance"])
        Path(args.replot).write_text(json.dumps({**saved, **summary}, indent=2))
        name = Path(args.replot).stem.removeprefix("time_to_quality_")
        plot(saved["runs"], summary["line"], Path(args.replot).with_suffix(".png"),
             f"{name}: answer quality against time ({len(saved['seeds'])} seeds)")
        print(json.dumps({k: v for k, v in summary.items()}, indent=2))
        return

    from tuner.vocabulary import metric_key, parse_metric_key

    sources = dict(item.split("=", 1) for item in args.tuner_from)
    contenders = [*args.only, *(f"tuner@{name}" for name in sources)]
    runs: dict[str, list[dict]] = {contender: [] for contender in contenders}
    name = None
    for seed in args.seeds:
        for contender in contenders:
            storage = tempfile.mkdtemp(prefix="race-runs-")
            source = sources.get(contender.removeprefix("tuner@")) if contender.startswith("tuner@") else None
            spec = race_spec(os.path.join(source or ".", args.spec), args.trials, args.epochs, seed, storage,
                             args.dataset)
            name = spec["name"]
            key = parse_metric_key(spec["metric"])
            test_key = metric_key("test", key.metric, key.k)
            if contender.startswith("tuner"):
                wall, ends = run_tuner(spec, args.data_dir, test_key, os.path.abspath(source) if source else None)
            else:
                wall, ends = run_in_subprocess(contender, spec, args.data_dir, test_key)
            curve = _answer_curve([e for e in ends if e[2] is not None])
            runs[contender].append({"seed": seed, "wall": wall, "curve": curve, "trials": len(ends)})
            print(f"{contender} seed {seed}: {wall:.0f} s, {len(ends)} trials, final test "
                  f"{curve[-1][1] if curve else float('nan'):.4f}", flush=True)
    summary = summarize(runs, args.tolerance)
    RESULTS.mkdir(exist_ok=True)
    payload = {"spec": args.spec, "dataset": args.dataset, "trials": args.trials, "epochs": args.epochs,
               "seeds": args.seeds, "tuner_from": sources,
               "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
               **summary, "runs": runs}
    (RESULTS / f"time_to_quality_{name}.json").write_text(json.dumps(payload, indent=2))
    plot(runs, summary["line"], RESULTS / f"time_to_quality_{name}.png",
         f"{name}: answer quality against time ({len(args.seeds)} seeds)")
    print(json.dumps({k: v for k, v in payload.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
