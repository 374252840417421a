"""Parsers of the raw file formats; each returns Interactions with the dataset's own ids."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuner.errors import DataError
from tuner.recsys.data.interactions import Interactions

if TYPE_CHECKING:
    import pandas as pd  # imported where a file is parsed: reading a spec must not pay for pandas


_EXPECTED = "lines of user, item, rating, timestamp"


def _read_table(path: Path, **kwargs) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: is not UTF-8 text (byte {exc.start}); expected {_EXPECTED}") from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from exc
    if frame.empty:
        raise DataError(f"{path}: holds no interactions; expected {_EXPECTED}")
    return frame


def _ratings_frame(frame: pd.DataFrame, path: Path, given_test: np.ndarray | None = None) -> Interactions:
    import pandas as pd

    if frame.isna().any().any():
        raise DataError(f"{path}: has empty or non-numeric fields; expected {_EXPECTED}")
    for column in ("user", "item", "rating", "timestamp"):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            bad = frame[column][pd.to_numeric(frame[column], errors="coerce").isna()].iloc[0]
            raise DataError(f"{path}: {column} {bad!r} is not a number; expected {_EXPECTED}")
    return Interactions(
        users=frame["user"].to_numpy(np.int64),
        items=frame["item"].to_numpy(np.int64),
        ratings=frame["rating"].to_numpy(np.float32),
        timestamps=frame["timestamp"].to_numpy(np.int64),
        given_test=given_test,
    )


_COLUMNS = ["user", "item", "rating", "timestamp"]


def read_movielens_100k(folder: Path) -> Interactions:
    """ml-100k: u1.base / u1.test are the dataset's own 80/20 split of u.data (tab separated)."""
    base = _read_table(folder / "u1.base", sep="\t", names=_COLUMNS)
    test = _read_table(folder / "u1.test", sep="\t", names=_COLUMNS)
    given_test = np.r_[np.zeros(len(base), bool), np.ones(len(test), bool)]
    import pandas as pd

    return _ratings_frame(pd.concat([base, test], ignore_index=True), folder / "u1.base", given_test)


def read_movielens_1m(folder: Path) -> Interactions:
    """ml-1m: ratings.dat, `user::movie::rating::timestamp`."""
    path = folder / "ratings.dat"
    frame = _read_table(path, sep="::", engine="python", names=_COLUMNS)
    return _ratings_frame(frame, path)


def read_movielens_latest_small(folder: Path) -> Interactions:
    """ml-latest-small: ratings.csv with a header, half-star ratings 0.5-5."""
    path = folder / "ratings.csv"
    frame = _read_table(path)
    expected = ["userId", "movieId", "rating", "timestamp"]
    if list(frame.columns) != expected:
        raise DataError(f"{path}: header is {list(frame.columns)}, expected {expected}")
    return _ratings_frame(frame.set_axis(_COLUMNS, axis=1), path)


def _read_lightgcn_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One line per user: `user item item ...` (a user with no items may stand alone)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        where = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{where}: is not UTF-8 text; expected `user item item ...` lines") from None
    users, items = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            row = np.array(fields, dtype=np.int64)
        except (ValueError, OverflowError) as exc:
            raise DataError(f"{path}:{number}: expected integer ids below 2^63, `user item item ...`") from exc
        users.append(np.full(len(row) - 1, row[0], dtype=np.int64))
        items.append(row[1:])
    if not users or not sum(len(i) for i in items):
        raise DataError(f"{path}: holds no interactions; expected `user item item ...` lines")
    return np.concatenate(users), np.concatenate(items)


def read_lightgcn_format(folder: Path) -> Interactions:
    """LightGCN repositories' format: train.txt and test.txt, implicit feedback, the test set given."""
    train_users, train_items = _read_lightgcn_file(folder / "train.txt")
    test_users, test_items = _read_lightgcn_file(folder / "test.txt")
    return Interactions(
        users=np.concatenate([train_users, test_users]),
        items=np.concatenate([train_items, test_items]),
        given_test=np.r_[np.zeros(len(train_users), bool), np.ones(len(test_users), bool)],
    )
