"""The Ray Tune trainable: one trial = sampled config -> Hyperparameters -> Trainer, with records and checkpoints.

Every epoch is written to the records before anything is reported, so what Ray later does to the trial
(stop, kill, retry) cannot lose it. Tune sees a report at every evaluated epoch; checkpoints ride on those
reports, at least `failure.checkpoint_every` epochs apart, and always at the last epoch.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.result import TIMESTEPS_TOTAL

from tuner import timeline
from tuner.errors import DivergedError, one_line, storage_reason
from tuner.experiment import per_user, provenance
from tuner.experiment.records import EpochRecord, RecordWriter, TrialIdentity, param_values
from tuner.recsys.data import SplitData
from tuner.recsys.metrics import Evaluator
from tuner.recsys.models import ModelSource, Recommender, graph_inputs
from tuner.recsys.models.contract import column_types
from tuner.recsys.models.graph import normalized_adjacency
from tuner.recsys.selection import BestEpoch
from tuner.recsys.training import EpochResult, Trainer, build_model_for, with_model_defaults
from tuner.spec import ExperimentSpec
from tuner.vocabulary import CHECKPOINT_FILE, ENDED_ITSELF, Column, Objective, StopReason

# What depends only on the dataset, built once per worker process and shared by every trial it runs (Ray reuses a
# trial's worker for the next trial): the training edges as a tensor, the normalised adjacency, the evaluator.
_shared: dict = {}


def _dataset_structures(model: type[Recommender], data: SplitData, ks: tuple[int, ...], eval_batch_size: int,
                        device: torch.device):
    wants_adjacency = "adjacency" in graph_inputs(model)
    key = (data.split_hash, wants_adjacency, ks, eval_batch_size, str(device))
    if _shared.get("key") != key:
        _shared.clear()  # a worker serves one experiment at a time: keep only the current dataset's structures
        train = torch.tensor(data.train)
        adjacency = normalized_adjacency(train, data.num_users, data.num_items).to(device) if wants_adjacency else None
        _shared.update(key=key, train=train, adjacency=adjacency, evaluator=Evaluator(data, ks, device, eval_batch_size))
    return _shared["train"], _shared["adjacency"], _shared["evaluator"]


@dataclass
class _Progress:
    """What a trial carries across a checkpoint besides the trainer: time spent, its best epoch, when it began."""

    cumulative_seconds: float
    best: BestEpoch
    trial_started: float


def train_trial(config: dict[str, Any], *, data: SplitData, spec_json: str, experiment_dir: str,
                model: ModelSource) -> None:
    """One trial: for each epoch of the Trainer, write its record row, keep the per-user metrics of the best
    validation epoch, report to Tune (with a checkpoint now and then). `model` is imported in this worker."""
    timeline.mark("trial_start")
    spec = ExperimentSpec.model_validate_json(spec_json)
    model_class = model.load()
    hp = with_model_defaults(model_class, spec.trial_hyperparameters(config))
    context = tune.get_context()
    trial_id = context.get_trial_id()
    cpus = context.get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))  # concurrent trials must not fight over cores
    device = torch.device("cuda") if ray.get_gpu_ids() and torch.cuda.is_available() else torch.device("cpu")

    train, adjacency, evaluator = _dataset_structures(model_class, data, hp.k, hp.eval_batch_size, device)
    trainer = Trainer(build_model_for(model_class, data, hp, train, adjacency), data, hp, device, evaluator)
    progress = _restore(trainer, device, spec.objective) or _Progress(0.0, BestEpoch(spec.mode), time.time())
    last_checkpoint_epoch = trainer.epochs_done

    writer = RecordWriter(experiment_dir, trial_id, hp.k, column_types(model_class))
    attempt = provenance.next_attempt(experiment_dir, trial_id)
    provenance.record_trial(experiment_dir, trial_id, attempt, device=str(device), split_hash=data.split_hash,
                            seed=hp.seed, model=model.origin(), node=ray.get_runtime_context().get_node_id())
    identity = TrialIdentity(experiment=spec.name, trial_id=trial_id, attempt=attempt, model=spec.model,
                             dataset=data.dataset, split_hash=data.split_hash, seed=hp.seed, device=str(device),
                             trial_started=progress.trial_started, params=param_values(hp))
    validation_users = spec.objective.users
    timeline.mark("trial_ready", trial_id=trial_id)
    try:
        for result in trainer.run():
            progress.cumulative_seconds += result.train_seconds + result.eval_seconds
            timeline.mark("epoch_end", trial_id=trial_id, epoch=result.epoch)
            last = result.epoch == hp.epochs
            ended = StopReason.FINISHED if last else StopReason.COLLAPSED if result.collapsed else None
            writer.write(_record(identity, result, progress.cumulative_seconds, ended))
            if not result.evaluated:
                continue
            improved = progress.best.offer(result.epoch, result.metrics[spec.metric], result.metrics[validation_users])
            if improved and result.test_per_user is not None:
                per_user.write(experiment_dir, trial_id, result.epoch, *result.test_per_user)
            report = {Column.EPOCH: result.epoch, Column.LOSS: result.loss, **result.metrics}
            if result.collapsed:  # ended with its metrics: the searcher is told its value, and Ray does not retry it
                _report({**report, ENDED_ITSELF: StopReason.COLLAPSED.value})
            elif last or result.epoch - last_checkpoint_epoch >= spec.failure.checkpoint_every:
                last_checkpoint_epoch = result.epoch
                _report_with_checkpoint(report, trainer, progress)
            else:
                _report(report)
    except DivergedError as exc:
        _report_divergence(spec, writer, identity, trainer.epochs_done + 1, progress.cumulative_seconds, str(exc))
    except Exception as exc:
        if storage_reason(exc) is not None:
            raise  # a full disk is not the trial's fault: the run stops (storage_faults) and resumes it later
        error = f"{type(exc).__name__} at epoch {trainer.epochs_done + 1}: {one_line(exc)}"
        if attempt == 1 or provenance.trial_error(experiment_dir, trial_id, attempt - 1) != error:
            provenance.record_trial_error(experiment_dir, trial_id, attempt, error)
            raise  # Ray retries it from its checkpoint
        # the same error at the same epoch as the attempt before: retrying again would only repeat it
        writer.end(StopReason.FAILED)
        _report({Column.EPOCH: trainer.epochs_done + 1, spec.metric: spec.objective.worst, ENDED_ITSELF: StopReason.FAILED.value,
                     "error": error})
        return
    writer.compact()


def _restore(trainer: Trainer, device: torch.device, objective: Objective) -> _Progress | None:
    """The trainer and the trial's progress from Tune's checkpoint, when the trial is resumed or retried."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state = torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location=device, weights_only=True)
    trainer.load_state_dict(state["trainer"])
    if "best_epoch" in state:
        best = BestEpoch(objective.mode, *state["best_epoch"])
    else:  # a checkpoint from before tuner kept the epoch: its best value times ±1 (by mode), at an unknown epoch
        best = BestEpoch(objective.mode, 0, float(state["best_value"]) * objective.sign)
    return _Progress(float(state[Column.CUMULATIVE_SECONDS]), best, float(state[Column.TRIAL_STARTED]))


def _report_with_checkpoint(report: dict, trainer: Trainer, progress: _Progress) -> None:
    with tempfile.TemporaryDirectory() as folder:
        state = {"trainer": trainer.state_dict(), Column.CUMULATIVE_SECONDS: progress.cumulative_seconds,
                 "best_epoch": (progress.best.epoch, progress.best.value),
                 Column.TRIAL_STARTED: progress.trial_started}
        torch.save(state, os.path.join(folder, CHECKPOINT_FILE))
        _report(report, checkpoint=tune.Checkpoint.from_directory(folder))


def _record(trial: TrialIdentity, result: EpochResult, cumulative_seconds: float,
            stop_reason: StopReason | None) -> EpochRecord:
    return EpochRecord(
        trial, epoch=result.epoch, status="ended" if stop_reason else "running",
        stop_reason=stop_reason.value if stop_reason else None, loss=result.loss, bpr_loss=result.bpr_loss,
        epoch_seconds=result.train_seconds + result.eval_seconds, sample_seconds=result.sample_seconds,
        eval_seconds=result.eval_seconds, cumulative_seconds=cumulative_seconds, evaluated=result.evaluated,
        metrics=result.metrics,
    )


def _report_divergence(spec, writer, trial: TrialIdentity, epoch, cumulative_seconds, message) -> None:
    """Record the diverged epoch and end the trial normally (so Ray does not retry it); the report's
    ENDED_ITSELF makes the searcher mark the Optuna trial FAILED, and its metric is the worst possible."""
    writer.write(EpochRecord(
        trial, epoch=epoch, status="ended", stop_reason=StopReason.DIVERGED.value, loss=math.nan, bpr_loss=None,
        epoch_seconds=None, sample_seconds=None, eval_seconds=None, cumulative_seconds=cumulative_seconds,
        evaluated=False, metrics={},
    ))
    _report({Column.EPOCH: epoch, spec.metric: spec.objective.worst, ENDED_ITSELF: StopReason.DIVERGED.value,
                 "error": message})


def _report(values: dict, checkpoint=None) -> None:
    """tune.report, with the epoch as the step: Ray's MLflow and TensorBoard loggers plot against `timesteps_total`
    when a result has it, else against Tune's count of reports (which skips the epochs eval_every leaves
    unevaluated, so the curves would not line up with tuner's own)."""
    tune.report({**values, TIMESTEPS_TOTAL: values[Column.EPOCH]}, checkpoint=checkpoint)
