import pytest

from tuner.errors import DataError
from tuner.recsys.data import DATASETS, DatasetSpec, prepare
from tuner.recsys.data.download import ensure_files


def test_every_named_dataset_is_registered():
    assert set(DATASETS) == {
        "movielens-100k", "movielens-1m", "movielens-latest-small", "gowalla", "yelp2018", "amazon-book",
        "lightgcn-format", "interactions", "synthetic",
    }


def test_missing_files_offline_name_files_directory_and_url(tmp_path):
    with pytest.raises(DataError) as info:
        ensure_files(DATASETS["movielens-1m"], tmp_path / "ml-1m", allow_download=False)
    message = str(info.value)
    assert "ratings.dat" in message and str(tmp_path / "ml-1m") in message
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in message
    assert "\n" not in message


def test_failed_download_is_one_line_error(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"gowalla: train.txt, test.txt not found in .* download from .* failed"):
        ensure_files(DATASETS["gowalla"], tmp_path / "gowalla", allow_download=True)
    assert not any((tmp_path / "gowalla").iterdir())  # nothing half-written


def test_lightgcn_format_from_any_folder(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2 3\n1 0 2\n2 3\n")
    (tmp_path / "test.txt").write_text("0 0\n1 3\n2 1\n")
    data = prepare(DatasetSpec(name="lightgcn-format", path=str(tmp_path), split={"kind": "given", "val": 0.0}))
    assert (data.num_users, data.num_items) == (3, 4)
    assert data.train.shape[1] == 6 and data.test.shape[1] == 3 and data.val.shape[1] == 0


def test_lightgcn_format_bad_line_names_file_and_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 x\n")
    (tmp_path / "test.txt").write_text("0 0\n")
    with pytest.raises(DataError, match=r"train.txt:2: expected integer ids"):
        prepare(DatasetSpec(name="lightgcn-format", path=str(tmp_path), split={"kind": "given"}))


def test_given_split_on_dataset_without_one(tmp_path):
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::1::5::1\n1::2::3::2\n2::1::4::3\n")
    with pytest.raises(DataError, match="dataset.split.kind: movielens-1m has no given test set"):
        prepare(DatasetSpec(name="movielens-1m", split={"kind": "given"}), data_dir=tmp_path)


def test_movielens_1m_parser(tmp_path):
    (tmp_path / "ml-1m").mkdir()
    rows = [f"{u}::{i}::{1 + (u * i) % 5}::{u * 100 + i}" for u in range(1, 9) for i in range(1, 9)]
    (tmp_path / "ml-1m" / "ratings.dat").write_text("\n".join(rows) + "\n")
    data = prepare(DatasetSpec(name="movielens-1m", rating_threshold=3), data_dir=tmp_path)
    assert data.counts["rows_read"] == 64
    assert data.counts["edges_after_threshold"] == sum(1 + (u * i) % 5 >= 3 for u in range(1, 9) for i in range(1, 9))


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'netflix'"):
        DatasetSpec(name="netflix")


def test_an_id_beyond_int64_names_file_and_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 99999999999999999999999 4\n")
    (tmp_path / "test.txt").write_text("0 2\n")
    spec = DatasetSpec.model_validate({"name": "lightgcn-format", "path": str(tmp_path), "split": {"kind": "given"}})
    with pytest.raises(DataError, match=r"train.txt:2: expected integer ids below 2\^63"):
        prepare(spec, cache_dir=tmp_path / "cache")


def test_a_non_numeric_movielens_id_is_named(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u1.base").write_text("1\t2\t5\t881250949\nabc\t3\t4\t881250949\n")
    (folder / "u1.test").write_text("1\t3\t5\t881250949\n")
    spec = DatasetSpec.model_validate({"name": "movielens-100k", "split": {"kind": "given"}})
    with pytest.raises(DataError, match=r"u1.base: user 'abc' is not a number"):
        prepare(spec, tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "name, files, expected",
    [
        ("movielens-1m", {"ml-1m/ratings.dat": b""}, "ratings.dat: holds no interactions"),
        ("movielens-100k", {"ml-100k/u1.base": b"1\t2\t5\t881250949\n", "ml-100k/u1.test": b""},
         "u1.test: holds no interactions"),
        ("movielens-latest-small", {"ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n"},
         "ratings.csv: holds no interactions"),
        ("movielens-1m", {"ml-1m/ratings.dat": b"1::2::5::1\n1::\xe9::5::1\n"}, "ratings.dat: is not UTF-8 text"),
        ("lightgcn-format", {"lg/train.txt": b"0 1 2\n1 \xff\xfe 3\n", "lg/test.txt": b"0 3\n"},
         "train.txt:2: is not UTF-8 text"),
        ("lightgcn-format", {"lg/train.txt": b"\n", "lg/test.txt": b"0 3\n"}, "train.txt: holds no interactions"),
    ],
)
def test_an_empty_or_binary_data_file_is_one_line_naming_it(tmp_path, name, files, expected):
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    path = {"path": str(tmp_path / "lg")} if name == "lightgcn-format" else {}
    spec = DatasetSpec.model_validate({"name": name, **path})
    with pytest.raises(DataError, match=expected) as info:
        prepare(spec, tmp_path, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
