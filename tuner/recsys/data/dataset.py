"""prepare(): dataset spec -> SplitData (read, make implicit, split), cached on disk under a hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs

from tuner import storage
from tuner.errors import DataError
from tuner.recsys.data import interaction_files, synthetic
from tuner.recsys.data.config import INTERACTIONS, DatasetSpec
from tuner.recsys.data.download import dataset_folder, default_data_dir, ensure_files
from tuner.recsys.data.interactions import k_core, subsample_users, to_implicit
from tuner.recsys.data.sources import DATASETS
from tuner.recsys.data.splits import TEST, TRAIN, VAL, assign

# Bump when parsing, implicit conversion or splitting changes, so that stale cached splits are not reused.
SPLIT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SplitData:
    """A split implicit graph. Edge arrays are (2, E) int64 [user; item], sorted by user then item."""

    dataset: str
    num_users: int
    num_items: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    split_hash: str
    counts: dict = field(default_factory=dict)
    # the dataset's own id of each user and item (index: tuner's contiguous id), integers or strings
    user_ids: np.ndarray | None = field(default=None, repr=False)
    item_ids: np.ndarray | None = field(default=None, repr=False)
    # what the split was made from: each data file (its path, or its name in the dataset's folder) -> its SHA-256;
    # the synthetic generator's options instead
    file_digests: dict = field(default_factory=dict)

    def edges(self, split: str) -> np.ndarray:
        return {"train": self.train, "val": self.val, "test": self.test}[split]

    def cold_start(self) -> tuple[int, int]:
        """(users, items) that have held-out (validation or test) edges but no training edge: their embeddings
        stay as initialised, and they are ranked and counted like any other."""
        held_out = np.concatenate([self.val, self.test], axis=1)
        trained_users = np.bincount(self.train[0], minlength=self.num_users) > 0
        trained_items = np.bincount(self.train[1], minlength=self.num_items) > 0
        return (int(np.unique(held_out[0][~trained_users[held_out[0]]]).size),
                int(np.unique(held_out[1][~trained_items[held_out[1]]]).size))

    def summary(self) -> str:
        c = self.counts
        cold_users, cold_items = self.cold_start()
        cold = (f"; cold start: {cold_users} users and {cold_items} items have held-out edges but no training edge"
                if cold_users or cold_items else "")
        return (
            f"{self.dataset}: {self.num_users} users, {self.num_items} items, "
            f"{self.train.shape[1]} train / {self.val.shape[1]} val / {self.test.shape[1]} test edges "
            f"({c.get('duplicates_collapsed', 0)} duplicates collapsed, "
            f"{c.get('rows_read', 0) - c.get('edges_after_threshold', 0)} below the rating threshold"
            + (f"; the k-core dropped {c['k_core_users_dropped']} users, {c['k_core_items_dropped']} items and "
               f"{c['k_core_edges_dropped']} edges" if "k_core_users_dropped" in c else "")
            + f"){cold}; "
            f"split {self.split_hash}"
        )


def default_cache_dir() -> Path:
    env = os.environ.get("TUNER_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("tuner")) / "splits"


def prepare(spec: DatasetSpec, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> SplitData:
    """Read, threshold, deduplicate, remap and split the dataset; reuse a cached split with the same hash."""
    source = DATASETS[spec.name]
    folder = None
    if source.folder is not None or (spec.path is not None and spec.name != INTERACTIONS):
        folder = ensure_files(source, dataset_folder(source, Path(data_dir or default_data_dir()), spec.path))
    contents = interaction_files.read_all(spec) if spec.name == INTERACTIONS else None
    fingerprint = interaction_files.fingerprint(contents) if contents is not None else _fingerprint(spec, folder)
    split_hash = _hash(spec, fingerprint)
    file_digests = {spec.files()[role]: digest for role, digest in fingerprint.items()} if contents is not None else fingerprint
    cache_file = Path(cache_dir or default_cache_dir()) / f"{spec.name}-{split_hash}.npz"
    cached = _read_cache(cache_file, spec.name, split_hash)
    if cached is not None:
        return dataclasses.replace(cached, file_digests=file_digests)

    if contents is not None:
        interactions = interaction_files.read(spec, contents)
    elif source.reader is None:
        interactions = synthetic.generate(spec.synthetic_options)
    elif folder is None:
        raise DataError(f"dataset.path: {spec.name} is read from a folder; give its path")
    else:
        interactions = source.reader(folder)
    if spec.split.kind == "given" and not source.has_given_split:
        raise DataError(f"dataset.split.kind: {spec.name} has no given test set; use random, per_user or temporal")
    graph = to_implicit(interactions, spec.rating_threshold, spec.name)
    if spec.min_user_interactions > 1 or spec.min_item_interactions > 1:
        graph = k_core(graph, spec.min_user_interactions, spec.min_item_interactions, spec.name)
    if spec.max_users is not None and spec.max_users < graph.num_users:
        graph = subsample_users(graph, spec.max_users, spec.split.seed)
    split = assign(graph, spec.split, spec.name)
    edges = {
        name: _sorted_edges(graph.users[split == code], graph.items[split == code])
        for name, code in (("train", TRAIN), ("val", VAL), ("test", TEST))
    }
    data = SplitData(
        dataset=spec.name,
        num_users=graph.num_users,
        num_items=graph.num_items,
        split_hash=split_hash,
        counts=graph.counts,
        user_ids=graph.user_ids,
        item_ids=graph.item_ids,
        file_digests=file_digests,
        **edges,
    )
    _write_cache(cache_file, data)
    return data


def _sorted_edges(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    order = np.lexsort((items, users))
    return np.stack([users[order], items[order]]).astype(np.int64)


def _fingerprint(spec: DatasetSpec, folder: Path | None) -> dict:
    if folder is None:
        return spec.synthetic_options.model_dump()
    return {name: _file_digest(folder / name) for name in DATASETS[spec.name].files}


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _hash(spec: DatasetSpec, fingerprint: dict) -> str:
    key = {
        "version": SPLIT_FORMAT_VERSION,
        "dataset": spec.name,
        "files": fingerprint,
        "rating_threshold": spec.rating_threshold,
        "max_users": spec.max_users,
        **({"k_core": [spec.min_user_interactions, spec.min_item_interactions]}
           if spec.min_user_interactions > 1 or spec.min_item_interactions > 1 else {}),
        "split": spec.split.model_dump(),
        **({"format": spec.format, "columns": spec.columns.model_dump() if spec.columns else None}
           if spec.name == INTERACTIONS else {}),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _read_cache(path: Path, dataset: str, split_hash: str) -> SplitData | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            return SplitData(
                dataset=dataset,
                num_users=meta["num_users"],
                num_items=meta["num_items"],
                train=npz["train"],
                val=npz["val"],
                test=npz["test"],
                split_hash=split_hash,
                counts=meta["counts"],
                user_ids=npz["user_ids"],
                item_ids=npz["item_ids"],
            )
    except (OSError, KeyError, ValueError):
        return None  # absent or unreadable: recompute and overwrite


def _write_cache(path: Path, data: SplitData) -> None:
    """Atomic: a reader sees the old file or the complete new one. A read-only cache is not an error."""
    meta = {"num_users": data.num_users, "num_items": data.num_items, "counts": data.counts}
    try:
        with storage.atomic_output(str(path)) as out:
            np.savez(out, train=data.train, val=data.val, test=data.test, meta=np.array(json.dumps(meta)),
                     user_ids=_plain(data.user_ids), item_ids=_plain(data.item_ids))
    except OSError:
        pass


def _plain(ids: np.ndarray | None) -> np.ndarray:
    """Ids as an array np.load reads without pickle: numbers, or fixed-width text."""
    ids = np.asarray(ids if ids is not None else [])
    return ids.astype(str) if ids.dtype == object else ids
