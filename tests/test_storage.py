"""Where tuner reads and writes (tuner.storage)."""

import pytest

from tuner import storage
from tuner.errors import StorageError


def test_a_uri_pyarrow_cannot_use_is_one_line_naming_it():
    with pytest.raises(StorageError) as raised:
        storage.is_dir("foo://bucket/runs")
    assert str(raised.value) == "foo://bucket/runs: Unrecognized filesystem type in URI: foo://bucket/runs"


def test_a_file_uri_and_a_plain_path_name_the_same_folder(tmp_path):
    assert storage.is_dir(f"file://{tmp_path}") and storage.is_dir(str(tmp_path))
