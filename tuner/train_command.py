"""`tuner train`: one configuration, no Ray — prepare data, build the model, fit, select on validation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from tuner import storage
from tuner.recsys.data import SplitData, prepare
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.training import EpochResult, Trainer, best_epoch, build_model_for, resolve_device
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
) -> TrainOutcome:
    hp = spec.fixed
    data = prepare(spec.dataset, data_dir)
    torch_device = resolve_device(device)
    trainer = Trainer(build_model_for(spec.model, data, hp), data, hp, torch_device)
    epochs = []
    for result in trainer.run():
        epochs.append(result)
        on_epoch(result)
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
