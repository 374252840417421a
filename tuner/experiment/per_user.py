"""Per-user test metrics of each trial's best-validation epoch, for paired per-user significance tests:
<experiment>/per_user/trial_id=<id>.parquet, atomically replaced whenever the trial finds a better epoch."""

from __future__ import annotations

import posixpath

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tuner import storage
from tuner.experiment.records import read_one_by_one
from tuner.vocabulary import PER_USER_DIR, Column, trial_folder


def write(experiment_dir: str, trial_id: str, epoch: int, users, values: dict) -> None:
    """`values`: {"recall@20": one value per user, ...} (Evaluator.evaluate_per_user's)."""
    fs, root = storage.resolve(experiment_dir)
    table = pa.table({
        Column.TRIAL_ID: [trial_id] * len(users),
        Column.EPOCH: pa.array([epoch] * len(users), pa.int32()),
        Column.USER: pa.array(users, pa.int64()),
        **{f"test/{name}": pa.array(column, pa.float64()) for name, column in values.items()},
    })
    with storage.atomic_output(posixpath.join(root, PER_USER_DIR, f"{trial_folder(trial_id)}.parquet"), fs) as stream:
        pq.write_table(table, stream)


def load(experiment_dir: str) -> pd.DataFrame:
    fs, root = storage.resolve(experiment_dir)
    selector = pafs.FileSelector(posixpath.join(root, PER_USER_DIR), allow_not_found=True)
    paths = sorted(i.path for i in fs.get_file_info(selector) if posixpath.basename(i.path).startswith(trial_folder("")))
    return read_one_by_one(fs, paths).to_pandas() if paths else pd.DataFrame()
