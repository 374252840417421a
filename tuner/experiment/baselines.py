"""An experiment's baselines (spec `baselines:`), computed once on its own split: <experiment>/baselines.parquet,
one row per (baseline, seed) in the records' metric columns. `tuner run` computes the rows as Ray tasks alongside
the trials (tuning.search.start_baselines, with recsys.baselines.compute)."""

from __future__ import annotations

import io

import pandas as pd

from tuner import storage
from tuner.spec import ExperimentSpec
from tuner.vocabulary import BASELINES_FILE


def needed(spec: ExperimentSpec, directory: str) -> list[tuple[str, int | None]]:
    """The (baseline, seed) rows still to compute: none once baselines.parquet exists."""
    if not spec.baselines or storage.is_file(storage.join(directory, BASELINES_FILE)):
        return []
    rows: list[tuple[str, int | None]] = [("mostpop", None)] if "mostpop" in spec.baselines else []
    if "mf" in spec.baselines:
        rows += [("mf", seed) for seed in spec.seeds or [spec.fixed.seed]]
    return rows


def write(directory: str, rows: list[dict]) -> None:
    storage.write_bytes(storage.join(directory, BASELINES_FILE), pd.DataFrame(rows).to_parquet(index=False))


def load(directory: str) -> pd.DataFrame:
    path = storage.join(directory, BASELINES_FILE)
    return pd.read_parquet(io.BytesIO(storage.read_bytes(path))) if storage.is_file(path) else pd.DataFrame()
