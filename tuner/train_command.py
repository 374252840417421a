"""`tuner train`: one configuration, no Ray — prepare data, build the model, fit, select on validation; with a
checkpoint file, a long run survives Ctrl-C, SIGTERM and crashes and the same command resumes it."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from tuner import storage
from tuner.errors import UsageError
from tuner.recsys.data import SplitData, prepare
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.models import locate
from tuner.recsys.training import EpochResult, Trainer, best_epoch, build_model_for, resolve_device, with_model_defaults
from tuner.spec import ExperimentSpec


@dataclass
class TrainOutcome:
    spec: ExperimentSpec
    data: SplitData
    device: str
    epochs: list[EpochResult]
    best: EpochResult
    most_popular: dict[str, float]


def train(
    spec: ExperimentSpec,
    data_dir: Path | None = None,
    device: str = "auto",
    on_epoch: Callable[[EpochResult], None] = lambda result: None,
    checkpoint: Path | None = None,
    on_data: Callable[[SplitData], None] = lambda data: None,
) -> TrainOutcome:
    """`checkpoint`: a file that holds the run's state every `failure.checkpoint_every` epochs and at the last one;
    when it exists, training continues from it (epochs before it are not recomputed, but passed to `on_epoch`).
    `on_data` gets the prepared dataset before the first epoch."""
    model_class = locate(spec.model, spec.model_folder).load()
    hp = with_model_defaults(model_class, spec.fixed)
    data = prepare(spec.dataset, data_dir)
    on_data(data)
    torch_device = resolve_device(device)
    trainer = Trainer(build_model_for(model_class, data, hp), data, hp, torch_device)
    epochs: list[EpochResult] = []
    fingerprint = _fingerprint(spec, data)
    if checkpoint is not None and checkpoint.exists():
        epochs = _resume(trainer, checkpoint, fingerprint)
        for result in epochs:
            on_epoch(result)
    for result in trainer.run():
        epochs.append(result)
        on_epoch(result)
        if checkpoint is not None and (result.epoch % spec.failure.checkpoint_every == 0 or result.epoch == hp.epochs):
            _save(trainer, epochs, checkpoint, fingerprint)
    most_popular = Evaluator(data, hp.k, torch_device, hp.eval_batch_size).evaluate(
        popularity_scores(data, torch_device)
    )
    return TrainOutcome(spec, data, str(torch_device), epochs, best_epoch(epochs, spec.metric, spec.mode), most_popular)


def write_outcome_json(outcome: TrainOutcome, path: Path) -> None:
    """Everything about the run as JSON, written atomically."""
    payload = {
        "spec": outcome.spec.model_dump(mode="json"),
        "dataset": outcome.data.dataset,
        "split_hash": outcome.data.split_hash,
        "counts": outcome.data.counts,
        "device": outcome.device,
        "best_epoch": outcome.best.epoch,
        "best_metrics": outcome.best.metrics,
        "most_popular": outcome.most_popular,
        "epochs": [{k: v for k, v in asdict(r).items() if k != "test_per_user"} for r in outcome.epochs],
    }
    storage.write_text(str(path), json.dumps(payload, indent=2))  # atomic; the umask decides who may read it


def _fingerprint(spec: ExperimentSpec, data: SplitData) -> str:
    """What a checkpoint must have been trained on to be continued: the model, the split and every hyperparameter
    but `epochs` (so that a finished run can be trained longer)."""
    what = {"model": spec.model, "split": data.split_hash, "fixed": spec.fixed.model_dump(mode="json", exclude={"epochs"})}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _save(trainer: Trainer, epochs: list[EpochResult], path: Path, fingerprint: str) -> None:
    buffer = io.BytesIO()
    history = [{k: v for k, v in asdict(r).items() if k != "test_per_user"} for r in epochs]
    torch.save({"fingerprint": fingerprint, "trainer": trainer.state_dict(), "epochs": history}, buffer)
    storage.write_bytes(str(path), buffer.getvalue())  # atomic: an interrupted save leaves the previous checkpoint


def _resume(trainer: Trainer, path: Path, fingerprint: str) -> list[EpochResult]:
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=True)
    except Exception as exc:
        raise UsageError(f"--checkpoint: {path} is not a tuner train checkpoint ({type(exc).__name__}); "
                        "remove it or choose another file") from None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise UsageError(f"--checkpoint: {path} was written by a run with another model, split or hyperparameters; "
                        "remove it or choose another file")
    if state["trainer"]["epochs_done"] > trainer.hp.epochs:
        raise UsageError(f"--checkpoint: {path} holds {state['trainer']['epochs_done']} epochs, more than "
                        f"fixed.epochs={trainer.hp.epochs}; raise epochs or choose another file")
    trainer.load_state_dict(state["trainer"])
    return [EpochResult(**row) for row in state["epochs"]]
