"""The dataset's own ids of the experiment's users and items: <experiment>/ids/users.parquet and items.parquet,
each `id` (tuner's contiguous id, as records, per-user metrics and exports use it) -> `original` (the dataset's id,
an integer or a string). Written once, when the experiment starts."""

from __future__ import annotations

import posixpath

import pyarrow as pa
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

