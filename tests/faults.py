"""Fault injection for the tuning tests, installed in every Ray worker through Ray's
`worker_process_setup_hook`. What to inject is read from <TUNER_TEST_FAULT_DIR>/faults.json at each epoch:
  {"raise_once_at_epoch": 5}        every trial raises once, at the start of that epoch
  {"nan_when_lr_at_least": 0.3}     trials with such a learning rate get a NaN loss ...
  {"nan_from_epoch": 4}             ... from that epoch on (default: from the first)
  {"sleep_per_batch": 0.05}         every batch takes that much longer (inside the timed epoch)
  {"sleep_per_batch_when_lr_at_least": [0.3, 0.1]}   the same, only for trials with such a learning rate
"""

import json
import os
import time
from pathlib import Path


def _config() -> dict:
    path = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / "faults.json"
    return json.loads(path.read_text()) if path.exists() else {}


def install() -> None:
    from ray import tune

    from tuner.recsys.training import Trainer

    train_epoch, batch_loss = Trainer._train_epoch, Trainer._batch_loss

    def faulty_train_epoch(self, epoch):
        config = _config()
        self.fault_epoch = epoch
        if config.get("raise_once_at_epoch") == epoch:
            marker = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / f"raised-{tune.get_context().get_trial_id()}"
            if not marker.exists():
                marker.touch()
                raise RuntimeError(f"injected fault at epoch {epoch}")
        return train_epoch(self, epoch)

    def faulty_batch_loss(self, u, p, n):
        config = _config()
        lr_threshold, seconds = config.get("sleep_per_batch_when_lr_at_least", [0.0, config.get("sleep_per_batch", 0)])
        if seconds and self.hp.lr >= lr_threshold:
            time.sleep(seconds)
        loss, bpr = batch_loss(self, u, p, n)
        threshold = config.get("nan_when_lr_at_least")
        if threshold is not None and self.hp.lr >= threshold and self.fault_epoch >= config.get("nan_from_epoch", 1):
            loss = loss * float("nan")
        return loss, bpr

    Trainer._train_epoch = faulty_train_epoch
    Trainer._batch_loss = faulty_batch_loss
