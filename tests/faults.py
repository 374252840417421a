"""Fault injection for the tuning tests, installed in every Ray worker through Ray's
`worker_process_setup_hook`. What to inject is read from <TUNER_TEST_FAULT_DIR>/faults.json at each epoch:
  {"raise_once_at_epoch": 5}   every trial raises once, at the start of that epoch
  {"nan_when_lr_at_least": 0.3}   trials with such a learning rate get a NaN loss
"""

import json
import os
from pathlib import Path


def _config() -> dict:
    path = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / "faults.json"
    return json.loads(path.read_text()) if path.exists() else {}


def install() -> None:
    from ray import tune

    from tuner.training import Trainer

    train_epoch, batch_loss = Trainer._train_epoch, Trainer._batch_loss

    def faulty_train_epoch(self, epoch):
        config = _config()
        if config.get("raise_once_at_epoch") == epoch:
            marker = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / f"raised-{tune.get_context().get_trial_id()}"
            if not marker.exists():
                marker.touch()
                raise RuntimeError(f"injected fault at epoch {epoch}")
        return train_epoch(self, epoch)

    def faulty_batch_loss(self, u, p, n):
        loss, bpr = batch_loss(self, u, p, n)
        threshold = _config().get("nan_when_lr_at_least")
        if threshold is not None and self.hp.lr >= threshold:
            loss = loss * float("nan")
        return loss, bpr

    Trainer._train_epoch = faulty_train_epoch
    Trainer._batch_loss = faulty_batch_loss
