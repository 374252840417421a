"""spec -> a new Ray Tune run: the searcher, ASHA, the trainable with its resources, the run's callbacks; running it
(`fit`) and the baselines that run alongside its trials. Resuming a saved run is tuning.restore's."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from tuner.experiment import baselines
from tuner.experiment.study_export import optuna_distribution
from tuner.recsys.data import SplitData
from tuner.recsys.models import locate
from tuner.spec import ExperimentSpec

# AskAndTellGridSampler and the callbacks are imported for Ray's saved state of experiments begun before they had their
# own modules: tuner.pkl (the run's callbacks) and the searcher's state (its sampler) name them here
from tuner.tuning.callbacks import RecordStopReasons, StopOnStorageFault
from tuner.tuning.progress import ProgressLines
from tuner.tuning.ray_session import without_log_lines
from tuner.tuning.resources import Plan
from tuner.tuning.searcher import AskAndTellGridSampler, EpochOptunaSearch, optuna_sampler, tell_earlier_trials  # noqa: F401
from tuner.tuning.trainable import train_trial
from tuner.vocabulary import Column

if TYPE_CHECKING:
    import pandas as pd


def scheduler(spec: ExperimentSpec):
    if spec.scheduler.kind == "none":
        return FIFOScheduler()
    max_epochs = spec.scheduler.max_epochs or spec.fixed.epochs
    return ASHAScheduler(
        time_attr=Column.EPOCH,
        max_t=max_epochs,
        grace_period=min(spec.scheduler.grace_period, max_epochs),
        reduction_factor=spec.scheduler.reduction_factor,
    )


def trainable_of(spec: ExperimentSpec, data: SplitData, experiment_dir: str, plan: Plan):
    """train_trial with the data (put in Ray's object store once), the spec and the model, and each trial's resources."""
    spec_json = spec.model_dump_json(exclude_unset=True)
    trainable = tune.with_parameters(train_trial, data=data, spec_json=spec_json, experiment_dir=experiment_dir,
                                     model=locate(spec.model, spec.model_folder))
    return tune.with_resources(trainable, {"cpu": plan.cpu, "gpu": plan.gpu})


def prepare_tune(plan: Plan) -> None:
    """Before a Tune run starts or resumes. Tune's console tables (hundreds of lines for a dozen trials) give way to
    ProgressLines: Tune's documented switch back to its plain output engine, which is silent at verbose=0 (set
    RAY_AIR_NEW_OUTPUT=1 to see them). And Ray Tune before 2.5x keeps at most one trial pending for a searcher other
    than its own, so trials would start one after another; its documented override lets every trial the plan runs at
    once be pending."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(plan.max_concurrent))


def new_tuner(
    spec: ExperimentSpec, data: SplitData, storage_path: str, experiment_dir: str, plan: Plan,
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
        tell_earlier_trials(searcher, spec, earlier)
    prepare_tune(plan)
    return tune.Tuner(
        trainable_of(spec, data, experiment_dir, plan),
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
        run_config=_run_config(spec, storage_path, experiment_dir, earlier=done),
    )


def _run_config(spec: ExperimentSpec, storage_path: str, experiment_dir: str, earlier: int = 0) -> tune.RunConfig:
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage_path,
        callbacks=[
            StopOnStorageFault(),
            RecordStopReasons(experiment_dir, spec.fixed.k, spec.fixed.epochs),
            ProgressLines(spec.metric, spec.mode, spec.trial_count(), spec.fixed.epochs, earlier=earlier),
            *_mlflow_callbacks(spec, experiment_dir),
        ],
        failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        # keep every checkpoint while trials run: with num_to_keep, a driver that dies between Ray deleting an old
        # checkpoint and saving the experiment state leaves that state pointing at a deleted checkpoint, and the
        # trial can never be resumed. experiment.set_aside.prune_checkpoints trims ended trials afterwards.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        verbose=0,  # ProgressLines prints one line per ended trial instead of Tune's tables
    )


def _mlflow_callbacks(spec: ExperimentSpec, experiment_dir: str) -> list[tune.Callback]:
    if spec.logging.mlflow is False:
        return []
    from tuner.tuning import mlflow_logging  # imports MLflow: only for a spec that logs to it

    return mlflow_logging.mlflow_callbacks(spec, experiment_dir)


def __getattr__(name: str):
    """MetricNamesForMLflow, for Ray's saved state (tuner.pkl) of a run begun while it lived here (see callbacks)."""
    if name == "MetricNamesForMLflow":
        from tuner.tuning.mlflow_logging import MetricNamesForMLflow

        return MetricNamesForMLflow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def trial_dirname(trial) -> str:
    """Trial folders are named by trial id, so that a result's folder tells its trial."""
    return trial.trial_id


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
