"""The dataset's own ids of the experiment's users and items: <experiment>/ids/users.parquet and items.parquet,
each `id` (tuner's contiguous id, as records, per-user metrics and exports use it) -> `original` (the dataset's id,
an integer or a string). Written once, when the experiment starts."""

from __future__ import annotations

import posixpath

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tuner import storage
from tuner.vocabulary import IDS_DIR


def write(experiment_dir: str, user_ids, item_ids) -> None:
    fs, root = storage.resolve(experiment_dir)
    for kind, ids in (("users", user_ids), ("items", item_ids)):
        if ids is None:
            continue
        table = pa.table({"id": pa.array(range(len(ids)), pa.int64()), "original": pa.array(list(ids.tolist()))})
        with storage.atomic_output(posixpath.join(root, IDS_DIR, f"{kind}.parquet"), fs) as stream:
            pq.write_table(table, stream)


def load(experiment_dir: str, kind: str) -> pd.DataFrame:
    """`kind`: users or items; an empty frame when the experiment has no such file (it predates them)."""
    fs, root = storage.resolve(experiment_dir)
    path = posixpath.join(root, IDS_DIR, f"{kind}.parquet")
    if fs.get_file_info(path).type != pafs.FileType.File:
        return pd.DataFrame(columns=["id", "original"])
    with fs.open_input_file(path) as f:
        return pq.read_table(f).to_pandas()
