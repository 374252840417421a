"""The datasets tuner knows by name: where their files live, where they come from, how to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tuner.recsys.data import parsers
from tuner.recsys.data.interactions import Interactions

_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_LIGHTGCN = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"


@dataclass(frozen=True)
class DatasetSource:
    name: str
    description: str
    folder: str | None  # sub-folder of the data directory; None: no files (synthetic) or a user-given path
    files: tuple[str, ...] = ()
    reader: Callable[[Path], Interactions] | None = None
    archive_url: str | None = None  # a zip whose top-level folder is `folder`
    file_urls: dict[str, str] = field(default_factory=dict)  # per-file downloads
    has_ratings: bool = True
    has_given_split: bool = False

    @property
    def download_url(self) -> str | None:
        if self.archive_url:
            return self.archive_url
        if self.file_urls:
            return next(iter(self.file_urls.values())).rsplit("/", 1)[0] + "/"
        return None


def _lightgcn_source(name: str, description: str) -> DatasetSource:
    return DatasetSource(
        name=name,
        description=description,
        folder=name,
        files=("train.txt", "test.txt"),
        reader=parsers.read_lightgcn_format,
        file_urls={f: f"{_LIGHTGCN}/{name}/{f}" for f in ("train.txt", "test.txt")},
        has_ratings=False,
        has_given_split=True,
    )


DATASETS: dict[str, DatasetSource] = {
    source.name: source
    for source in [
        DatasetSource(
            name="movielens-100k",
            description="MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings 1-5 (given split: u1.base/u1.test)",
            folder="ml-100k",
            files=("u1.base", "u1.test"),
            reader=parsers.read_movielens_100k,
            archive_url=f"{_GROUPLENS}/ml-100k.zip",
            has_given_split=True,
        ),
        DatasetSource(
            name="movielens-1m",
            description="MovieLens 1M: 6,040 users, 3,706 movies, 1,000,209 ratings 1-5",
            folder="ml-1m",
            files=("ratings.dat",),
            reader=parsers.read_movielens_1m,
            archive_url=f"{_GROUPLENS}/ml-1m.zip",
        ),
        DatasetSource(
            name="movielens-latest-small",
            description="MovieLens latest-small: 610 users, 9,724 movies, 100,836 ratings 0.5-5",
            folder="ml-latest-small",
            files=("ratings.csv",),
            reader=parsers.read_movielens_latest_small,
            archive_url=f"{_GROUPLENS}/ml-latest-small.zip",
        ),
        _lightgcn_source("gowalla", "Gowalla check-ins (LightGCN paper): 29,858 users, 40,981 items, given split"),
        _lightgcn_source("yelp2018", "Yelp 2018 (LightGCN paper): 31,668 users, 38,048 items, given split"),
        _lightgcn_source("amazon-book", "Amazon-Book (LightGCN paper): 52,643 users, 91,599 items, given split"),
        DatasetSource(
            name="lightgcn-format",
            description="any folder (dataset.path) with train.txt/test.txt as in the LightGCN repositories",
            folder=None,
            files=("train.txt", "test.txt"),
            reader=parsers.read_lightgcn_format,
            has_ratings=False,
            has_given_split=True,
        ),
        DatasetSource(
            name="interactions",
            description="your own interactions: a CSV, TSV, parquet or RecBole .inter file or URI (dataset.path), or "
                        "dataset.train / test / val files",
            folder=None,
            has_given_split=True,
        ),
        DatasetSource(
            name="synthetic",
            description="seeded generator with planted user/item clusters (dataset.synthetic sets its size)",
            folder=None,
            has_given_split=False,
        ),
    ]
}
