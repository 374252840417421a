"""Datasets: locate or download raw files, make them implicit, split them, sample BPR triples."""

from tuner.data.config import DatasetSpec, SplitSpec, SyntheticSpec
from tuner.data.dataset import SplitData, prepare
from tuner.data.sources import DATASETS

__all__ = ["DATASETS", "DatasetSpec", "SplitData", "SplitSpec", "SyntheticSpec", "prepare"]
