"""Fault injection for the tuning tests: a training Callback that every Ray worker installs in
`training.PROCESS_CALLBACKS` through Ray's `worker_process_setup_hook`. What to inject is read from
<TUNER_TEST_FAULT_DIR>/faults.json at each epoch:
  {"raise_once_at_epoch": 5}        every trial raises once, at the start of that epoch
  {"raise_always_at_epoch": 3}      every trial raises at the start of that epoch, on every attempt
  {"nan_when_lr_at_least": 0.3}     trials with such a learning rate get a NaN loss ...
  {"nan_from_epoch": 4}             ... from that epoch on (default: from the first)
  {"sleep_per_batch": 0.05}         every batch takes that much longer (inside the timed epoch)
  {"sleep_per_batch_when_lr_at_least": [0.3, 0.1]}   the same, only for trials with such a learning rate
  {"collapse_when_lr_at_least": 0.3}  trials with such a learning rate have every parameter zeroed and never updated:
                                    their BPR loss is ln 2 at every epoch
  {"meet_at_first_epoch": 2}        each trial waits at its first epoch until that many trials are there (raises after
                                    60 s): trials that run one after the other never meet
"""

import json
import os
import time
from pathlib import Path

from tuner.recsys import training


def _config() -> dict:
    path = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / "faults.json"
    return json.loads(path.read_text()) if path.exists() else {}


class Faults(training.Callback):
    def on_epoch_start(self, trainer, epoch):
        self.config = _config()
        if self._collapsing(trainer):
            for parameter in trainer.model.parameters():
                parameter.data.zero_()
        if self.config.get("meet_at_first_epoch") and epoch == 1:
            _meet(self.config["meet_at_first_epoch"])
        if self.config.get("raise_always_at_epoch") == epoch:
            raise ValueError(f"deterministic fault at epoch {epoch}")
        if self.config.get("raise_once_at_epoch") == epoch:
            from ray import tune

            marker = Path(os.environ["TUNER_TEST_FAULT_DIR"]) / f"raised-{tune.get_context().get_trial_id()}"
            if not marker.exists():
                marker.touch()
                raise RuntimeError(f"injected fault at epoch {epoch}")

    def _collapsing(self, trainer) -> bool:
        threshold = self.config.get("collapse_when_lr_at_least")
        return threshold is not None and trainer.hp.lr >= threshold

    def on_batch_loss(self, trainer, epoch, loss):
        config = self.config
        if self._collapsing(trainer):
            return loss * 0.0
        lr_threshold, seconds = config.get("sleep_per_batch_when_lr_at_least", [0.0, config.get("sleep_per_batch", 0)])
        if seconds and trainer.hp.lr >= lr_threshold:
            time.sleep(seconds)
        threshold = config.get("nan_when_lr_at_least")
        if threshold is not None and trainer.hp.lr >= threshold and epoch >= config.get("nan_from_epoch", 1):
            return loss * float("nan")
        return loss


def _meet(trials: int) -> None:
    from ray import tune

    folder = Path(os.environ["TUNER_TEST_FAULT_DIR"])
    (folder / f"arrived-{tune.get_context().get_trial_id()}").touch()
    deadline = time.monotonic() + 60
    while len(list(folder.glob("arrived-*"))) < trials:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no other trial arrived in 60 s: fewer than {trials} trials ran at once")
        time.sleep(0.05)


def install() -> None:
    training.PROCESS_CALLBACKS.append(Faults())
