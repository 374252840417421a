"""spec -> OptunaSearch + ASHA + tune.Tuner. With trainable.py and ray_session.py, the only code that knows Ray."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import os
import pickle
import posixpath
import sys
import warnings
from typing import TYPE_CHECKING

import optuna
import pyarrow.fs as pafs
import ray
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from tuner import storage
from tuner.errors import ExperimentError, SpecError
from tuner.experiment import baselines
from tuner.experiment.records import RecordWriter
from tuner.experiment.study_export import optuna_distribution
from tuner.recsys.data import SplitData
from tuner.recsys.models import locate
from tuner.spec import ExperimentSpec
from tuner.tuning import storage_faults
from tuner.tuning.progress import ProgressLines
from tuner.tuning.ray_session import without_log_lines
from tuner.tuning.resources import Plan
from tuner.tuning.trainable import train_trial
from tuner.vocabulary import ENDED_ITSELF, PRODUCED_METRICS, Objective, StopReason, decode_param, param_column

if TYPE_CHECKING:
    import pandas as pd


class EpochOptunaSearch(OptunaSearch):
    """OptunaSearch, told what each trial's records say (so the live study is the one tuner exports to optuna.db):

    - intermediate values are indexed by epoch (not Tune's report count), and an epoch a resumed trial runs again
      is told once;
    - a trial that trained every epoch (or collapsed) is COMPLETE with its best validation value — the epoch tuner
      returns — not the value of its last epoch;
    - a trial the scheduler stopped is PRUNED, with its intermediate values (OptunaSearch tells it COMPLETE with
      its partial value, so TPE would take a 15-epoch value for a finished result; PRUNED is what Optuna's own
      pruning tells, and TPE ranks pruned trials below finished ones, deeper ones first);
    - a diverged trial, and an errored one even when it had reported results, is FAILED.

    FAILED and PRUNED go through OptunaSearch's own completion with no result, which tells Optuna inside its guard:
    a sampler that raises while being told (GridSampler calls study.stop() after the last grid point, which raises
    outside an objective) must not crash the run or leave the trial to be told twice.

    `--restart-errored` makes Ray restart an errored trial under a new id that this searcher never suggested
    (OptunaSearch would raise KeyError on its results): those trials are left out of the live study — the
    exported optuna.db, rebuilt from the records, has them."""

    def __init__(self, *args, epochs: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._epochs = epochs  # what a trial that trains to the end reaches
        self._suggested: set[str] | None = set()  # None: not known (a state saved by a tuner that did not keep it)
        self._last_epoch_told: dict[str, int] = {}
        self._best_told: dict[str, float] = {}

    def suggest(self, trial_id: str):
        suggestion = super().suggest(trial_id)
        if isinstance(suggestion, dict) and self._suggested is not None:
            self._suggested.add(trial_id)
        return suggestion

    def restore(self, checkpoint_path: str) -> None:
        epochs = self._epochs
        self._suggested, self._last_epoch_told, self._best_told = None, {}, {}
        super().restore(checkpoint_path)  # sets them, unless the state was saved before tuner kept them
        self._epochs = epochs

    def _suggested_it(self, trial_id: str) -> bool:
        return self._suggested is None or trial_id in self._suggested

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if _failed(result) or not self._suggested_it(trial_id):
            return  # a failed or diverged trial's last report carries the worst value, not a measured one
        if result["epoch"] <= self._last_epoch_told.get(trial_id, 0):
            return  # a trial resumed from its checkpoint runs the epochs after it again: Optuna has them (and warns)
        self._last_epoch_told[trial_id] = result["epoch"]
        value = result[self.metric]
        if trial_id not in self._best_told or Objective(self.metric, self.mode).better(value, self._best_told[trial_id]):
            self._best_told[trial_id] = value
        super().on_trial_result(trial_id, {**result, "training_iteration": result["epoch"]})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not self._suggested_it(trial_id):
            return
        if error or _failed(result):
            super().on_trial_complete(trial_id, result=None, error=True)
            return
        if result is not None:
            self.on_trial_result(trial_id, result)  # the result the scheduler stopped the trial at is not told before
        if result is None or (result["epoch"] < self._epochs and result.get(ENDED_ITSELF) != StopReason.COLLAPSED):
            super().on_trial_complete(trial_id, result=None)  # the scheduler stopped it: PRUNED
        else:
            best = self._best_told.get(trial_id, result[self.metric])  # a state saved before tuner kept it: the last
            super().on_trial_complete(trial_id, {**result, self.metric: best})


def _failed(result: dict | None) -> bool:
    return (result or {}).get(ENDED_ITSELF) in (StopReason.FAILED, StopReason.DIVERGED)


class RecordStopReasons(tune.Callback):
    """Ends a trial's records the moment Ray ends the trial: a trial that the scheduler stopped gets
    `early_stopped`, one that failed for good `failed` (the trainable writes `finished` and `diverged` itself),
    and every ended trial's epochs are compacted. So an interrupted run's records already tell stopped trials
    from unfinished ones."""

    def __init__(self, experiment_dir: str, ks: tuple[int, ...]):
        self.experiment_dir, self.ks = experiment_dir, ks

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._end(trial.trial_id, StopReason.EARLY_STOPPED)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._end(trial.trial_id, StopReason.FAILED)

    def _end(self, trial_id: str, stop_reason: StopReason) -> None:
        try:
            RecordWriter(self.experiment_dir, trial_id, self.ks).end(stop_reason)
        except (OSError, ValueError) as exc:  # never fail the trial over this: run_command.settle ends it later
            warnings.warn(f"trial {trial_id}: its records could not be ended now ({exc}); the run's end will do it", stacklevel=1)


class StopOnStorageFault(tune.Callback):
    """Every trial error, retried or final, goes to storage_faults.notice: a full disk stops the run."""

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        storage_faults.notice(trial.trial_id, trial.error_file)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        storage_faults.notice(trial.trial_id, trial.error_file)


def optuna_sampler(spec: ExperimentSpec) -> optuna.samplers.BaseSampler:
    search = spec.search
    if search.sampler == "tpe":
        startup = min(10, max(2, search.num_samples // 3))
        # constant liar: running trials count as bad, so parallel trials do not all probe the same spot
        return optuna.samplers.TPESampler(seed=search.seed, constant_liar=True, n_startup_trials=startup)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=search.seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=search.seed)
    grid = {name: param.grid_values() for name, param in spec.searched().items()}
    return AskAndTellGridSampler(grid, seed=search.seed)


class AskAndTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, told by Ray Tune. Once the grid is done, GridSampler stops the study's optimize loop
    (`Study.stop`); Tune asks and tells without such a loop, so Study.stop raises and OptunaSearch logged its error
    as a warning at the end of every grid search. Tune itself stops after `num_samples` trials: nothing to stop."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def scheduler(spec: ExperimentSpec):
    if spec.scheduler.kind == "none":
        return FIFOScheduler()
    max_epochs = spec.scheduler.max_epochs or spec.fixed.epochs
    return ASHAScheduler(
        time_attr="epoch",
        max_t=max_epochs,
        grace_period=min(spec.scheduler.grace_period, max_epochs),
        reduction_factor=spec.scheduler.reduction_factor,
    )


def _trainable(spec: ExperimentSpec, data: SplitData, experiment_dir: str, plan: Plan):
    spec_json = spec.model_dump_json(exclude_unset=True)
    trainable = tune.with_parameters(train_trial, data=data, spec_json=spec_json, experiment_dir=experiment_dir,
                                     model=locate(spec.model, spec.model_folder))
    return tune.with_resources(trainable, {"cpu": plan.cpu, "gpu": plan.gpu})


def _quiet_tune_console() -> None:
    """Tune's console tables (hundreds of lines for a dozen trials) give way to ProgressLines: Tune's documented
    switch back to its plain output engine, which is silent at verbose=0 (set RAY_AIR_NEW_OUTPUT=1 to see them)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _start_trials_together(plan: Plan) -> None:
    """Ray Tune before 2.5x keeps at most one trial pending for a searcher other than its own, so trials would
    start one after another; its documented override lets every trial the plan runs at once be pending."""
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(plan.max_concurrent))


def new_tuner(
    spec: ExperimentSpec, data: SplitData, storage: str, experiment_dir: str, plan: Plan,
    earlier: pd.DataFrame | None = None, warm_start: list[dict] | None = None,
) -> tune.Tuner:
    """A new Tune run of the spec. `earlier`: the trial table of the trials this experiment ran before (it is being
    extended): the searcher is told them and runs the rest. `warm_start`: configurations to run first."""
    space = {name: optuna_distribution(param) for name, param in spec.searched().items()}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines say what matters
    searcher = EpochOptunaSearch(space=space or None, metric=spec.metric, mode=spec.mode, sampler=optuna_sampler(spec),
                                 points_to_evaluate=warm_start or None, epochs=spec.fixed.epochs)
    done = 0
    if earlier is not None and not earlier.empty:
        done = len(earlier)
        _tell_earlier_trials(searcher, spec, earlier)
    _start_trials_together(plan)
    _quiet_tune_console()
    return tune.Tuner(
        _trainable(spec, data, experiment_dir, plan),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler(spec),
            num_samples=spec.trial_count() - done,
            max_concurrent_trials=plan.max_concurrent,
            trial_dirname_creator=trial_dirname,
            reuse_actors=True,  # a new trial reuses a finished trial's worker: no fresh process importing torch
        ),
        run_config=_run_config(spec, storage, experiment_dir, earlier=done),
    )


def _tell_earlier_trials(searcher: EpochOptunaSearch, spec: ExperimentSpec, earlier: pd.DataFrame) -> None:
    """What the searcher learnt in the experiment's earlier runs, told as the live search told it: a finished or
    collapsed trial COMPLETE with its best validation value, an early-stopped one PRUNED, the others FAILED. (A
    pruned trial told here has no intermediate values — OptunaSearch indexes them by report count, not epoch — so
    TPE ranks it after this run's pruned trials.)"""
    for _, trial in earlier.sort_values(["trial_started", "trial_id"]).iterrows():
        params = {name: decode_param(name, trial[param_column(name)]) for name in spec.searched()}
        value = trial.get(spec.metric)
        usable = trial["stop_reason"] in PRODUCED_METRICS and isinstance(value, float) and math.isfinite(value)
        searcher.add_evaluated_point(params, float(value) if usable else 0.0, error=not usable,
                                     pruned=usable and trial["stop_reason"] == StopReason.EARLY_STOPPED.value)


def _run_config(spec: ExperimentSpec, storage: str, experiment_dir: str, earlier: int = 0) -> tune.RunConfig:
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage,
        callbacks=[
            StopOnStorageFault(),
            RecordStopReasons(experiment_dir, spec.fixed.k),
            ProgressLines(spec.metric, spec.mode, spec.trial_count(), spec.fixed.epochs, earlier=earlier),
            *_mlflow(spec, experiment_dir),
        ],
        failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        # keep every checkpoint while trials run: with num_to_keep, a driver that dies between Ray deleting an old
        # checkpoint and saving the experiment state leaves that state pointing at a deleted checkpoint, and the
        # trial can never be resumed. tuning.run.prune_checkpoints trims ended trials afterwards.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        verbose=0,  # ProgressLines prints one line per ended trial instead of Tune's tables
    )


class MetricNamesForMLflow(MLflowLoggerCallback):
    """Ray's MLflow callback (one MLflow run per trial); MLflow refuses '@' in metric names, so val/recall@20 is
    logged as val/recall_at_20."""

    def log_trial_result(self, iteration, trial, result):
        super().log_trial_result(iteration, trial, {k.replace("@", "_at_"): v for k, v in result.items()})


def mlflow_tracking_uri(spec: ExperimentSpec, experiment_dir: str) -> str | None:
    """logging.mlflow: the tracking URI to log to (true: an SQLite store in the experiment folder), or None."""
    if spec.logging.mlflow is False:
        return None
    if isinstance(spec.logging.mlflow, str):
        return spec.logging.mlflow
    if storage.is_uri(experiment_dir):
        raise SpecError(f"logging.mlflow: {experiment_dir} is not a local folder, so it cannot hold mlflow.db; "
                        "give a tracking URI (http://..., sqlite:///...) instead of true")
    return f"sqlite:///{os.path.join(experiment_dir, 'mlflow.db')}"


def _mlflow(spec: ExperimentSpec, experiment_dir: str) -> list[tune.Callback]:
    """One MLflow run per trial (its configuration and every reported metric) in the MLflow experiment named after
    this one."""
    uri = mlflow_tracking_uri(spec, experiment_dir)
    if uri is None:
        return []
    if importlib.util.find_spec("mlflow") is None:
        raise SpecError("logging.mlflow: MLflow is not installed; pip install 'tuner[mlflow]'")
    if uri.startswith(("http://", "https://")):
        _check_reachable(uri)
    return [MetricNamesForMLflow(tracking_uri=uri, experiment_name=spec.name, save_artifact=False,
                                 tags={"tuner.model": spec.model, "tuner.dataset": spec.dataset.name})]


def _check_reachable(uri: str) -> None:
    """A tracking server that is down made every trial's logger retry for minutes, then fail with a traceback: one
    quick request (no retries, 10 s) before any trial starts says so in one line instead."""
    from mlflow import MlflowClient

    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # what MLflow raises for a refused connection, a timeout, a wrong URL or token
        reason = str(exc).split(" failed with exception ")[-1].splitlines()[0][:300]
        raise SpecError(f"logging.mlflow: {uri} cannot be reached ({reason}); start the tracking server, or set "
                        "logging.mlflow: true to log into the experiment folder") from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def can_restore(experiment_dir: str) -> bool:
    """Ray saved the experiment far enough to resume it: its Tuner (tuner.pkl) and at least one snapshot of the
    trials (experiment_state-*.json). A driver killed between the two leaves a tuner.pkl that Tune restores into an
    experiment that runs one trial and stops, on every rerun."""
    return tune.Tuner.can_restore(experiment_dir) and bool(_snapshots(experiment_dir)[1])


def _snapshots(experiment_dir: str) -> tuple[pafs.FileSystem, list[str]]:
    """Ray's snapshots of the experiment's trials (experiment_state-<time>.json, one per Tune run), newest first."""
    fs, root = storage.resolve(experiment_dir)
    paths = [
        info.path for info in fs.get_file_info(pafs.FileSelector(root))
        if posixpath.basename(info.path).startswith("experiment_state-") and info.path.endswith(".json")
    ]
    return fs, sorted(paths, reverse=True)


# Experiments that tuner started before it had layer packages pickled these under their old module names.
_MOVED_MODULES = {"tuner.search": "tuner.tuning.search", "tuner.trainable": "tuner.tuning.trainable"}


def _accept_state_saved_by_older_tuner() -> None:
    for old, new in _MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def restored_tuner(
    spec: ExperimentSpec, data: SplitData, experiment_dir: str, plan: Plan, resume_errored: bool, restart_errored: bool
) -> tune.Tuner:
    _start_trials_together(plan)
    _quiet_tune_console()
    _accept_state_saved_by_older_tuner()
    try:
        return tune.Tuner.restore(
            experiment_dir,
            trainable=_trainable(spec, data, experiment_dir, plan),
            resume_unfinished=True,
            resume_errored=resume_errored,
            restart_errored=restart_errored,
        )
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:  # what a damaged pickle raises
        raise ExperimentError(
            f"{experiment_dir}: Ray's experiment state (tuner.pkl) is damaged ({exc}); run with --fresh to start over "
            "(which deletes the experiment, records included)"
        ) from None


def trial_dirname(trial) -> str:
    """Trial folders are named by trial id, so that a result's folder tells its trial."""
    return trial.trial_id


def trials_no_snapshot_holds(experiment_dir: str, trial_ids: list[str]) -> list[str]:
    """Those of `trial_ids` that none of Ray's snapshots of the experiment holds (experiment_state-*.json, one per Tune
    run of it: the runs before an extension have their own). Read newest first, and only as far as needed."""
    fs, snapshots = _snapshots(experiment_dir)
    unknown = set(trial_ids)
    for path in snapshots:
        if not unknown:
            break
        with _quiet_analysis():
            unknown -= {trial.trial_id for trial in tune.ExperimentAnalysis(path, storage_filesystem=fs).trials}
    return sorted(unknown)


# What Ray logs about trials that tuner's own lines already tell (progress.ProgressLines: one line per failed attempt,
# naming its error.txt) or that is not a tuner user's to act on: a traceback per failed attempt, the unfetched
# error of a trial's actor, the list of trials left unfinished, and the advice to resume with `Tuner.restore(...)`
# (a tuner user runs the same command again, as the run's summary says).
_SAID_OTHERWISE = (
    ("ray.tune.execution.tune_controller", "Trial task failed for trial"),
    ("ray._private.worker", "Unhandled error (suppress with"),
    ("ray.tune.tune", "Trials did not complete"),
    ("ray.tune.analysis.experiment_analysis", "Failed to fetch metrics"),  # trials a killed driver never saved
    ("ray.tune.tune", "Tuner.restore("),
)


def fit(tuner: tune.Tuner) -> None:
    """Tuner.fit, with Ray's own lines about failed trials left out (_SAID_OTHERWISE)."""
    with contextlib.ExitStack() as quiet:
        for logger_name, containing in _SAID_OTHERWISE:
            quiet.enter_context(without_log_lines(logger_name, containing))
        tuner.fit()


@contextlib.contextmanager
def _quiet_analysis():
    """ExperimentAnalysis warns about every trial without results yet (a pending one): not news to a user."""
    logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def trial_statuses(experiment_dir: str) -> dict[str, str]:
    """trial id -> Ray's final status (TERMINATED, ERROR, PENDING, RUNNING, PAUSED)."""
    with _quiet_analysis():
        analysis = tune.ExperimentAnalysis(experiment_dir)
    return {trial.trial_id: trial.status for trial in analysis.trials}


@ray.remote(num_cpus=1)
def _baseline_task(data: SplitData, baseline: str, seed: int | None, ks: tuple[int, ...], metric: str, mode: str) -> dict:
    import torch

    from tuner.recsys.baselines import compute

    torch.set_num_threads(1)
    return compute(data, baseline, seed, ks, metric, mode)


def start_baselines(spec: ExperimentSpec, data: SplitData, experiment_dir: str) -> list:
    """The experiment's baselines as Ray tasks that run alongside the trials (none once they are written)."""
    rows = baselines.needed(spec, experiment_dir)
    if not rows:
        return []
    data_ref = ray.put(data)
    return [_baseline_task.remote(data_ref, baseline, seed, spec.fixed.k, spec.metric, spec.mode) for baseline, seed in rows]


def finish_baselines(experiment_dir: str, pending: list) -> None:
    if pending:
        baselines.write(experiment_dir, ray.get(pending))
