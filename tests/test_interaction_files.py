"""A researcher's own interaction log as a dataset (`dataset.name: interactions`): CSV, TSV, parquet and RecBole
`.inter` files, string or integer ids, the dataset's own split as separate files, URIs; every bad file one line."""

import numpy as np
import pandas as pd
import pytest

from tests.cli import tuner
from tuner.errors import DataError
from tuner.recsys.data import DatasetSpec, prepare
from tuner.spec import validate_spec

LOG = [  # user, item, rating, timestamp: 4 users, 5 items, string ids
    ("alice", "film-a", 5, 100), ("alice", "film-b", 3, 101), ("alice", "film-c", 4, 102), ("alice", "film-d", 1, 103),
    ("bob", "film-a", 4, 104), ("bob", "film-c", 5, 105), ("bob", "film-e", 2, 106), ("bob", "film-b", 4, 107),
    ("carol", "film-b", 5, 108), ("carol", "film-d", 4, 109), ("carol", "film-e", 5, 110), ("carol", "film-a", 3, 111),
    ("dave", "film-c", 4, 112), ("dave", "film-e", 4, 113), ("dave", "film-a", 5, 114), ("dave", "film-d", 2, 115),
]
FRAME = pd.DataFrame(LOG, columns=["user", "item", "rating", "timestamp"])


def _prepare(tmp_path, **dataset):
    spec = DatasetSpec.model_validate({"name": "interactions", "split": {"kind": "random", "test": 0.25, "val": 0.2},
                                       **dataset})
    return prepare(spec, cache_dir=tmp_path / "cache")


def _edges(data, split="all"):
    """(original user, original item) pairs of a split, or of all splits."""
    arrays = [data.train, data.val, data.test] if split == "all" else [data.edges(split)]
    edges = np.concatenate(arrays, axis=1)
    return sorted(zip(data.user_ids[edges[0]].tolist(), data.item_ids[edges[1]].tolist()))


def test_a_csv_with_string_ids_keeps_the_dataset_own_ids(tmp_path):
    FRAME.to_csv(tmp_path / "log.csv", index=False)
    data = _prepare(tmp_path, path=str(tmp_path / "log.csv"))
    assert (data.num_users, data.num_items) == (4, 5)
    assert data.user_ids.tolist() == ["alice", "bob", "carol", "dave"]
    assert _edges(data) == sorted(zip(FRAME["user"], FRAME["item"]))
    above = _prepare(tmp_path, path=str(tmp_path / "log.csv"), rating_threshold=4)  # the rating column counts
    assert _edges(above) == sorted((u, i) for u, i, r, _ in LOG if r >= 4)


def test_parquet_tsv_and_a_uri_read_the_same_interactions(tmp_path):
    FRAME.to_csv(tmp_path / "log.csv", index=False)
    FRAME.to_parquet(tmp_path / "log.parquet", index=False)
    FRAME.rename(columns={"user": "u", "item": "i"}).to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    csv = _prepare(tmp_path, path=str(tmp_path / "log.csv"))
    assert _edges(_prepare(tmp_path, path=str(tmp_path / "log.parquet"))) == _edges(csv)
    tsv = _prepare(tmp_path, path=str(tmp_path / "log.tsv"), columns={"user": "u", "item": "i"})
    assert _edges(tsv, "test") == _edges(csv, "test")  # the same rows in the same order: the same split
    assert _edges(_prepare(tmp_path, path=f"file://{tmp_path}/log.csv"), "test") == _edges(csv, "test")


def test_a_recbole_inter_file_is_read_as_it_is(tmp_path):
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in LOG]
    (tmp_path / "ml.inter").write_text("\n".join(lines) + "\n")
    data = _prepare(tmp_path, path=str(tmp_path / "ml.inter"), split={"kind": "temporal", "test": 0.25, "val": 0.2})
    assert _edges(data) == sorted(zip(FRAME["user"], FRAME["item"]))
    assert _edges(data, "test") == sorted((u, i) for u, i, _, t in LOG if t >= 112)  # the newest quarter


def test_the_datasets_own_split_comes_from_train_val_and_test_files(tmp_path):
    FRAME.iloc[:10].to_csv(tmp_path / "train.csv", index=False)
    FRAME.iloc[10:12].to_csv(tmp_path / "val.csv", index=False)
    FRAME.iloc[12:].to_csv(tmp_path / "test.csv", index=False)
    data = _prepare(tmp_path, train=str(tmp_path / "train.csv"), val=str(tmp_path / "val.csv"),
                    test=str(tmp_path / "test.csv"), split={"kind": "given"})
    assert _edges(data, "val") == sorted(zip(FRAME["user"][10:12], FRAME["item"][10:12]))
    assert _edges(data, "test") == sorted(zip(FRAME["user"][12:], FRAME["item"][12:]))


def test_headerless_files_name_columns_by_position_and_integer_ids_stay_numbers(tmp_path):
    (tmp_path / "u.data").write_text("10\t3\t5\t1\n9\t3\t4\t2\n10\t7\t2\t3\n9\t8\t5\t4\n10\t8\t1\t5\n")
    data = _prepare(tmp_path, path=str(tmp_path / "u.data"), format="tsv", columns={"user": 0, "item": 1, "rating": 2},
                    split={"kind": "random", "test": 0.2, "val": 0.0})
    assert data.user_ids.tolist() == [9, 10] and data.item_ids.tolist() == [3, 7, 8]  # sorted as numbers, not text


def test_a_changed_file_makes_another_split_hash(tmp_path):
    FRAME.to_csv(tmp_path / "log.csv", index=False)
    before = _prepare(tmp_path, path=str(tmp_path / "log.csv")).split_hash
    FRAME.iloc[:-1].to_csv(tmp_path / "log.csv", index=False)
    assert _prepare(tmp_path, path=str(tmp_path / "log.csv")).split_hash != before


def _write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name, content, dataset, expected", [
    ("empty.csv", "", {}, "empty.csv: is empty; expected one interaction per line"),
    ("header.csv", "user,item\n", {}, "header.csv: holds no interactions, only a header"),
    ("cols.csv", "uid,iid\n1,2\n", {}, "cols.csv: has no column 'user' for the user (its columns: uid, iid); set "
                                       "dataset.columns.user"),
    ("rating.csv", "user,item,rating\n1,2,5\n1,3,five\n", {},
     "rating.csv: line 3: column 'rating': 'five' is not a number; expected a numeric rating"),
    ("ids.csv", "user,item\n1,2\n,3\n", {}, "ids.csv: line 3: column 'user': the user id is missing"),
    ("latin1.csv", "user,item\nj\xfcrgen,2\n".encode("latin-1"), {},
     "latin1.csv: line 2: is not UTF-8 text (byte 0xfc); save the file as UTF-8"),
    ("time.csv", "user,item,timestamp\n1,2,2024-01-01T10:00:00\n1,3,yesterday\n", {},
     "time.csv: line 3: column 'timestamp': 'yesterday' is neither a number nor an ISO 8601 date-time"),
    ("numbers.csv", "user,item,timestamp\n1,2,1700000000\n1,3,notatime\n", {},  # the bad value, not the first number
     "numbers.csv: line 3: column 'timestamp': 'notatime' is neither a number nor an ISO 8601 date-time"),
    ("mixed.csv", "user,item,timestamp\n1,2,1700000000\n1,3,2024-01-01\n", {},
     "mixed.csv: line 2: column 'timestamp': '1700000000' is a number but line 3 holds the date-time '2024-01-01'"),
    ("broken.parquet", "not parquet at all", {}, "broken.parquet: is not a readable parquet file"),
    ("gone.csv", None, {}, "gone.csv: cannot be read"),
    ("pos.tsv", "1\t2\n", {"columns": {"user": 0, "item": 1, "rating": 5}},
     "pos.tsv: has no column 5 for the rating (its columns: 0, 1); set dataset.columns.rating"),
])
def test_every_bad_file_is_one_line_naming_file_line_and_column(tmp_path, name, content, dataset, expected):
    path = str(tmp_path / name) if content is None else _write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        _prepare(tmp_path, path=path, **dataset)
    assert str(info.value).startswith(str(tmp_path)) and expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dataset, expected", [
    ({"path": "log.data"}, "dataset.format: cannot tell the format of log.data from its suffix; set dataset.format"),
    ({}, "interactions needs dataset.path (a CSV, TSV, parquet or RecBole .inter file), or dataset.train and"),
    ({"path": "a.csv", "train": "b.csv", "test": "c.csv"}, "give either dataset.path"),
    ({"path": "a.csv", "split": {"kind": "given"}}, "dataset.split.kind: given needs the dataset's own split"),
    ({"train": "b.csv"}, "interactions needs dataset.path"),
    ({"path": "a.csv", "columns": {"user": 0, "item": "item"}}, "every column by its position"),
])
def test_a_bad_interactions_block_is_refused_with_the_spec(dataset, expected):
    from tuner.errors import SpecError

    with pytest.raises(SpecError, match="spec.yaml: dataset") as info:
        validate_spec({"name": "x", "model": "mf", "dataset": {"name": "interactions", **dataset}}, "spec.yaml")
    assert expected in str(info.value)


def test_file_options_belong_to_interactions_only():
    from tuner.errors import SpecError

    with pytest.raises(SpecError, match="dataset.columns: applies only to dataset interactions"):
        validate_spec({"name": "x", "model": "mf", "dataset": {"name": "movielens-1m", "columns": {"user": "u"}}}, "s")


def test_train_on_a_bad_file_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "log.csv").write_text("user,item,rating\n1,2,5\n1,3,five\n")
    (tmp_path / "spec.yaml").write_text("name: x\nmodel: mf\ndataset: {name: interactions, path: log.csv}\n")
    result = tuner("train", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: log.csv: line 3: column 'rating': 'five' is not a number; expected a numeric rating")


@pytest.mark.integration
def test_ml100k_u_data_read_as_a_generic_tsv_is_the_named_dataset(shared_data, tmp_path):
    """The named movielens-100k (u1.base + u1.test) and the same files through `interactions`: the same edges, ids
    and split, for the dataset's own split and for a random one. (u.data here is u1.base followed by u1.test, row
    for row; a split is drawn over a file's rows in order, so another row order would give another random split.)"""
    folder = shared_data / "ml-100k"
    columns = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}
    cache = tmp_path / "cache"
    for split in ({"kind": "given"}, {"kind": "random", "test": 0.2, "val": 0.1, "seed": 3}):
        named = prepare(DatasetSpec(name="movielens-100k", rating_threshold=4, split=split), shared_data, cache)
        files = {"train": str(folder / "u1.base"), "test": str(folder / "u1.test")}
        if split["kind"] == "random":
            files = {"path": str(folder / "u.data")}
        generic = prepare(DatasetSpec(name="interactions", format="tsv", columns=columns, rating_threshold=4,
                                      split=split, **files), cache_dir=cache)
        assert (generic.num_users, generic.num_items) == (named.num_users, named.num_items)
        assert np.array_equal(generic.user_ids, named.user_ids) and np.array_equal(generic.item_ids, named.item_ids)
        for name in ("train", "val", "test"):
            assert np.array_equal(generic.edges(name), named.edges(name)), (split, name)
