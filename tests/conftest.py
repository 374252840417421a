import os
from pathlib import Path

import numpy as np
import pytest

# Tests never download: a missing file must fail at once.
os.environ["TUNER_OFFLINE"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


SLOW_TEST_TIMEOUT = 600  # seconds; every other test has pyproject.toml's `timeout`


def pytest_collection_modifyitems(items):
    """A test marked slow (Ray, subprocesses, real data) opts out of the short default timeout."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "split-cache"))
    monkeypatch.setenv("TUNER_DATA_DIR", str(tmp_path_factory.getbasetemp() / "empty-data-dir"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def tiny_split(num_users=6, num_items=8, seed=0, density=0.4):
    """A small random SplitData for unit tests (every user has train, val and test edges)."""
    from tuner.recsys.data import SplitData

    rng = np.random.default_rng(seed)
    edges = {"train": [], "val": [], "test": []}
    for user in range(num_users):
        items = rng.permutation(num_items)[: max(3, int(density * num_items))]
        edges["val"].append((user, items[0]))
        edges["test"].append((user, items[1]))
        edges["train"].extend((user, i) for i in items[2:])
    arrays = {k: np.array(sorted(v), dtype=np.int64).T for k, v in edges.items()}
    return SplitData("tiny", num_users, num_items, split_hash="tiny", **arrays)


def epochs_written(record_dir) -> dict:
    """Epochs on disk per trial folder: loose epoch files plus the rows of a compacted trial.parquet."""
    import pyarrow.parquet as pq

    counts = {}
    for trial_dir in (p for p in Path(record_dir).glob("*") if p.is_dir()):
        loose = len(list(trial_dir.glob("epoch=*.parquet")))
        compacted = trial_dir / "trial.parquet"
        try:
            rows = pq.read_metadata(compacted).num_rows if compacted.exists() else 0
        except OSError:  # being replaced right now
            rows = 0
        counts[trial_dir.name] = loose + rows
    return counts


def kill_tree(process) -> None:
    """SIGKILL a process and everything under it, as when a machine dies (Ray's workers run in sessions of their
    own, so killing the process group is not enough)."""
    import psutil

    try:
        root = psutil.Process(process.pid)
        tree = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
