"""spec -> OptunaSearch + ASHA + tune.Tuner. With trainable.py, the only module that knows Ray Tune."""

from __future__ import annotations

import os

import optuna
import ray
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from tuner.data import SplitData
from tuner.spec import ExperimentSpec, ParamSpec
from tuner.trainable import train_trial


class EpochOptunaSearch(OptunaSearch):
    """OptunaSearch with three corrections: intermediate values are indexed by epoch (not Tune's report
    count); a diverged trial is FAILED rather than COMPLETE with a fake value; and an errored trial is FAILED
    even when it had reported results (OptunaSearch would tell Optuna COMPLETE with its last value)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if result.get("diverged"):
            return
        super().on_trial_result(trial_id, {**result, "training_iteration": result["epoch"]})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._completed_trials and (error or (result or {}).get("diverged")):
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.FAIL)
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result, error)


def optuna_distribution(param: ParamSpec) -> optuna.distributions.BaseDistribution:
    if param.type == "categorical":
        return optuna.distributions.CategoricalDistribution(param.choices)
    if param.type == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log, step=int(param.step or 1))
    return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log, step=param.step)


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
    return optuna.samplers.GridSampler(grid, seed=search.seed)


def num_samples(spec: ExperimentSpec) -> int:
    """The grid sampler runs every grid point once; other samplers run search.num_samples trials."""
    return spec.grid_size() if spec.search.sampler == "grid" else spec.search.num_samples


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


def start_ray() -> None:
    """An existing cluster when RAY_ADDRESS is set (as inside a Ray job), else a new embedded local instance —
    never a cluster that some earlier `ray start` on this machine left behind."""
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False, log_to_driver=True)


def _trainable(spec: ExperimentSpec, data: SplitData, experiment_dir: str):
    trainable = tune.with_parameters(train_trial, data=data, spec_json=spec.model_dump_json(exclude_unset=True), experiment_dir=experiment_dir)
    return tune.with_resources(trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def new_tuner(spec: ExperimentSpec, data: SplitData, storage: str, experiment_dir: str) -> tune.Tuner:
    space = {name: optuna_distribution(param) for name, param in spec.searched().items()}
    searcher = EpochOptunaSearch(space=space or None, metric=spec.metric, mode=spec.mode, sampler=optuna_sampler(spec))
    return tune.Tuner(
        _trainable(spec, data, experiment_dir),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler(spec),
            num_samples=num_samples(spec),
            max_concurrent_trials=spec.search.max_concurrent,
            trial_dirname_creator=trial_dirname,
            reuse_actors=True,  # a new trial reuses a finished trial's worker: no fresh process importing torch
        ),
        run_config=_run_config(spec, storage),
    )


def _run_config(spec: ExperimentSpec, storage: str) -> tune.RunConfig:
    return tune.RunConfig(
        name=spec.name,
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        # keep every checkpoint while trials run: with num_to_keep, a driver that dies between Ray deleting an old
        # checkpoint and saving the experiment state leaves that state pointing at a deleted checkpoint, and the
        # trial can never be resumed. run_command.prune_checkpoints trims ended trials afterwards.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
    )


def can_restore(experiment_dir: str) -> bool:
    return tune.Tuner.can_restore(experiment_dir)


def restored_tuner(
    spec: ExperimentSpec, data: SplitData, experiment_dir: str, resume_errored: bool, restart_errored: bool
) -> tune.Tuner:
    return tune.Tuner.restore(
        experiment_dir,
        trainable=_trainable(spec, data, experiment_dir),
        resume_unfinished=True,
        resume_errored=resume_errored,
        restart_errored=restart_errored,
    )


def trial_dirname(trial) -> str:
    """Trial folders are named by trial id, so that a result's folder tells its trial."""
    return trial.trial_id


def trial_statuses(experiment_dir: str) -> dict[str, str]:
    """trial id -> Ray's final status (TERMINATED, ERROR, PENDING, RUNNING, PAUSED)."""
    analysis = tune.ExperimentAnalysis(experiment_dir)
    return {trial.trial_id: trial.status for trial in analysis.trials}
