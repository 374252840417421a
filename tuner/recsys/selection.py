"""Model selection, the one rule every layer applies: a trial's result is its best-validation epoch.

Among the evaluated epochs, the best value of the selection metric wins, ties going to the earliest epoch. A split
without validation users (`dataset.split.val: 0`) has nothing to select on: the last evaluated epoch is taken.
Pure Python (no torch), so the analysis applies the rule to records exactly as training does to its epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from tuner import vocabulary


@dataclass
class BestEpoch:
    """The best-validation epoch so far, offered one evaluated epoch at a time, in epoch order."""

    mode: str  # "max" or "min"
    epoch: int | None = None
    value: float | None = None

    def offer(self, epoch: int, value: float, validation_users: float) -> bool:
        """Whether `epoch` is now the best one (and becomes it)."""
        better = (
            self.epoch is None or self.value is None
            or validation_users == 0
            or (math.isfinite(value) and (not math.isfinite(self.value) or
                                          vocabulary.better(value, self.value, self.mode)))
        )
        if better:
            self.epoch, self.value = epoch, value
        return better


def best_epoch(evaluated: Iterable[tuple[int, float, float]], mode: str) -> int | None:
    """The best-validation epoch among (epoch, metric value, validation users) of the evaluated epochs; None when
    there are none."""
    best = BestEpoch(mode)
    for epoch, value, users in sorted(evaluated):
        best.offer(epoch, value, users)
    return best.epoch
