
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tuner.experiment import records
from tuner.recsys.hyperparameters import Hyperparameters


def _row(trial, epoch, attempt=1, stop_reason=None, recall=0.1) -> records.EpochRecord:
    identity = records.TrialIdentity(experiment="e", trial_id=trial, attempt=attempt, model="mf", dataset="synthetic",
                                     split_hash="h", seed=0, device="cpu", trial_started=None,
                                     params=records.param_values(Hyperparameters(k=[10])))
    return records.EpochRecord(identity, epoch=epoch, status="ended" if stop_reason else "running",
                               stop_reason=stop_reason, loss=1.0 / epoch, bpr_loss=None, epoch_seconds=None,
                               sample_seconds=None, eval_seconds=None, cumulative_seconds=None, evaluated=True,
                               metrics={"val/recall@10": recall})


def test_schema_has_every_metric_and_hyperparameter():
    schema = records.record_schema([10, 20])
    for name in ("experiment", "trial_id", "attempt", "split_hash", "seed", "epoch", "status", "stop_reason", "loss",
                 "epoch_seconds", "cumulative_seconds", "test/ndcg@20", "train/precision@10", "val/users",
                 "param_lr", "param_weight_decay", "param_samples_per_user", "param_regularization"):
        assert name in schema.names, name


def test_writer_and_reader_round_trip(tmp_path):
    writer = records.RecordWriter(str(tmp_path), "t1", [10])
    for epoch in (1, 2):
        writer.write(_row("t1", epoch))
    frame = records.load(str(tmp_path))
    assert list(frame["epoch"]) == [1, 2]
    assert frame["val/recall@10"].tolist() == [0.1, 0.1]
    assert not list((tmp_path / "records" / "t1").glob(".tmp-*"))  # no temporary files left


def test_retried_epochs_newest_attempt_wins_and_rolled_back_epochs_are_dropped(tmp_path):
    writer = records.RecordWriter(str(tmp_path), "t1", [10])
    for epoch in (1, 2, 3, 4):  # first attempt got to epoch 4; its checkpoint was at epoch 2
        writer.write(_row("t1", epoch, attempt=1))
    writer.write(_row("t1", 3, attempt=2, stop_reason="early_stopped", recall=0.3))  # the retry stopped at 3
    frame = records.load(str(tmp_path))
    assert list(zip(frame["epoch"], frame["attempt"])) == [(1, 1), (2, 1), (3, 2)]
    assert frame.iloc[-1]["val/recall@10"] == 0.3


def test_attempts_are_numbered_per_trial_by_the_manifests_each_start_writes(tmp_path):
    from tuner.experiment import provenance

    for trial in ("t1", "t1", "t2"):
        provenance.record_trial(str(tmp_path), trial, provenance.next_attempt(str(tmp_path), trial))
    assert sorted((m["trial_id"], m["attempt"]) for m in provenance.trial_manifests(str(tmp_path))) == [
        ("t1", 1), ("t1", 2), ("t2", 1)]


def _two_trials(tmp_path):
    """One trial ended (compacted into trial.parquet), one still running (epoch files)."""
    ended = records.RecordWriter(str(tmp_path), "t1", [10])
    for epoch in (1, 2):
        ended.write(_row("t1", epoch, stop_reason="finished" if epoch == 2 else None))
    ended.compact()
    running = records.RecordWriter(str(tmp_path), "t2", [10])
    running.write(_row("t2", 1))
    return tmp_path / "records"


def test_the_records_folder_is_a_dataset_pandas_pyarrow_duckdb_and_polars_read_as_it_is(tmp_path):
    """No marker files, no key=value folders (hive discovery would add a second, differently typed trial_id)."""
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    folder = _two_trials(tmp_path)
    expected = [("t1", 1), ("t1", 2), ("t2", 1)]

    def rows(frame):
        return sorted(zip(frame["trial_id"], frame["epoch"]))

    assert rows(pd.read_parquet(folder)) == expected
    assert rows(ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()) == expected
    assert rows(pl.read_parquet(f"{folder}/**/*.parquet").to_pandas()) == expected
    query = f"SELECT trial_id, epoch FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true)"
    assert sorted(duckdb.sql(query).fetchall()) == expected
    assert pd.read_parquet(folder).columns.tolist() == records.record_schema([10]).names  # one schema


def test_an_experiment_begun_with_trial_id_folders_and_attempt_markers_is_read_and_resumed_as_it_is(tmp_path):
    from tuner.experiment import provenance

    legacy = tmp_path / "records" / "trial_id=t1"
    legacy.mkdir(parents=True)
    (legacy / "attempt=1").touch()
    pq.write_table(pa.Table.from_pylist([_row("t1", 1).row()], schema=records.record_schema([10])), legacy / "epoch=1.parquet")
    assert provenance.next_attempt(str(tmp_path), "t1") == 2  # the marker counts
    records.RecordWriter(str(tmp_path), "t1", [10]).write(_row("t1", 2, attempt=2))
    assert sorted(p.name for p in legacy.iterdir()) == ["attempt=1", "epoch=1.parquet", "epoch=2.parquet"]
    assert list(records.load(str(tmp_path))["epoch"]) == [1, 2]


def test_truncated_file_is_skipped_with_a_warning(tmp_path):
    writer = records.RecordWriter(str(tmp_path), "t1", [10])
    writer.write(_row("t1", 1))
    writer.write(_row("t1", 2))
    path = tmp_path / "records" / "t1" / "epoch=2.parquet"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="epoch=2.parquet: skipped"):
        frame = records.load(str(tmp_path))
    assert list(frame["epoch"]) == [1]


def test_empty_experiment_gives_empty_frame(tmp_path):
    frame = records.load(str(tmp_path))
    assert frame.empty and frame.attrs["unreadable"] == []  # a rerun reads which files are unreadable from it


def test_files_are_plain_parquet(tmp_path):
    records.RecordWriter(str(tmp_path), "t1", [10]).write(_row("t1", 1))
    table = pq.read_table(tmp_path / "records" / "t1" / "epoch=1.parquet")
    assert table.schema == records.record_schema([10])
    plain = pd.read_parquet(tmp_path / "records" / "t1" / "epoch=1.parquet")  # no tuner needed to read it
    assert plain.loc[0, "trial_id"] == "t1" and plain.loc[0, "epoch"] == 1


def test_compaction_keeps_every_row_in_one_file(tmp_path):
    writer = records.RecordWriter(str(tmp_path), "t1", [10])
    for epoch in (1, 2, 3):
        writer.write(_row("t1", epoch, attempt=1))
    writer.write(_row("t1", 2, attempt=2, stop_reason="finished"))  # a retry that ended at epoch 2
    before = records.load(str(tmp_path))
    writer.compact()
    folder = tmp_path / "records" / "t1"
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["trial.parquet"]
    after = records.load(str(tmp_path))
    pd.testing.assert_frame_equal(before, after)
    assert list(zip(after["epoch"], after["attempt"])) == [(1, 1), (2, 2)]


def test_files_with_differing_schemas_are_read_as_one(tmp_path):
    """A metric stored as an integer in one file, a column only one file has: read, unified, nothing lost."""
    records.RecordWriter(str(tmp_path), "t1", [10]).write(_row("t1", 1))
    table = pa.Table.from_pylist([{**_row("t2", 1).row(), "val/recall@10": 1, "note": "extra"}])
    folder = tmp_path / "records" / "t2"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "epoch=1.parquet")
    frame = records.load(str(tmp_path))
    assert list(frame["trial_id"]) == ["t1", "t2"] and frame.attrs["unreadable"] == []
    assert frame["val/recall@10"].tolist() == [0.1, 1.0] and frame["note"].tolist()[1] == "extra"


def test_an_unreadable_compacted_file_is_reported(tmp_path):
    writer = records.RecordWriter(str(tmp_path), "t1", [10])
    writer.write(_row("t1", 1, stop_reason="finished"))
    writer.compact()
    compacted = tmp_path / "records" / "t1" / "trial.parquet"
    compacted.write_bytes(compacted.read_bytes()[:40])
    records.RecordWriter(str(tmp_path), "t2", [10]).write(_row("t2", 1))
    with pytest.warns(UserWarning, match="trial.parquet: skipped, not a readable parquet file"):
        frame = records.load(str(tmp_path))
    assert list(frame["trial_id"]) == ["t2"] and frame.attrs["unreadable"] == [str(compacted)]
