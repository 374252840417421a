"""`tuner train`: one configuration, no Ray — prepare data, build the model, fit, select on validation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from tuner import storage
from tuner.recsys.data import SplitData, prepare
from tuner.recsys.metrics import Evaluator, popularity_scores
from tuner.recsys.models import build_model
from tuner.recsys.training import EpochResult, Trainer, best_epoch, resolve_device
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
    torch.manual_seed(hp.seed)
    model = build_model(spec.model, data.num_users, data.num_items, torch.tensor(data.train), **hp.model_dump())
    trainer = Trainer(model, data, hp, torch_device)
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
        "epochs": [asdict(r) for r in outcome.epochs],
    }
    storage.write_text(str(path), json.dumps(payload, indent=2))  # atomic; the umask decides who may read it
