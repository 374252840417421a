"""Datasets: locate or download raw files, make them implicit, split them, sample BPR triples."""

from tuner.recsys.data.config import DatasetSpec, SplitSpec, SyntheticSpec
from tuner.recsys.data.dataset import SplitData, prepare
from tuner.recsys.data.sources import DATASETS

__all__ = ["DATASETS", "DatasetSpec", "SplitData", "SplitSpec", "SyntheticSpec", "prepare"]
