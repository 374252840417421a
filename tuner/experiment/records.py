"""Per-epoch trial records as parquet: one fixed schema, one file per (trial, epoch), written atomically.

Layout: <experiment dir>/records/<id>/epoch=<n>.parquet while a trial runs (records/ is a dataset pandas, pyarrow,
DuckDB and polars read as it is: parquet files only, one schema, no partition folders). A retried or resumed trial
rewrites the epochs after its last checkpoint; `load` returns one row per (trial, epoch) and drops epochs that an
older attempt wrote beyond where the newest attempt has got (they were rolled back to a checkpoint). When a trial
has ended, its epochs are compacted into <id>/trial.parquet (written before the epoch files are
removed, so a crash in between only leaves duplicates that `load` drops): reading a parquet file costs about a
millisecond whatever its size, and a finished experiment of 200 trials x 100 epochs is then 200 files, not 20,000.
"""

from __future__ import annotations

import posixpath
import warnings
from dataclasses import dataclass, fields
from typing import Any, Iterable, get_args, get_type_hints

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tuner import storage
from tuner.experiment.layout import trial_records_dir
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.storage import resolve as filesystem
from tuner.vocabulary import (
    COMPACTED_FILE,
    ENDED,
    RECORDS_DIR,
    RUNNING,
    Column,
    StopReason,
    encode_param,
    epoch_file,
    is_record_file,
    metric_columns,
    param_column,
)


@dataclass(frozen=True)
class TrialIdentity:
    """What every record row of one trial attempt repeats."""

    experiment: str
    trial_id: str
    attempt: int
    model: str
    dataset: str
    split_hash: str
    seed: int
    device: str | None
    trial_started: float | None  # unix time of the trial's first start (orders trials)
    params: dict[str, Any]  # param_<name> -> value, as `param_values` gives them


@dataclass(frozen=True)
class EpochRecord:
    """One row of the records: one epoch of one trial. The records' schema is derived from these fields (and the
    trial's), then the metric columns, then the hyperparameter columns."""

    trial: TrialIdentity
    epoch: int
    status: str  # running | ended
    stop_reason: str | None  # null while running, else a vocabulary.StopReason
    loss: float | None
    bpr_loss: float | None
    epoch_seconds: float | None
    sample_seconds: float | None
    eval_seconds: float | None
    cumulative_seconds: float | None
    evaluated: bool
    metrics: dict[str, float]  # metric key -> value (none when the epoch was not evaluated)

    def row(self) -> dict[str, Any]:
        identity = {f.name: getattr(self.trial, f.name) for f in fields(TrialIdentity) if f.name != "params"}
        own = {f.name: getattr(self, f.name) for f in fields(EpochRecord) if f.name not in ("trial", "metrics")}
        return {**identity, **own, **self.metrics, **self.trial.params}


_ARROW_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
_NARROW = {Column.ATTEMPT: pa.int32(), Column.EPOCH: pa.int32()}


def _fields_of(record_type: type, skip: tuple[str, ...]) -> list[pa.Field]:
    hints = get_type_hints(record_type)
    found = []
    for item in fields(record_type):
        if item.name in skip:
            continue
        kinds = [kind for kind in get_args(hints[item.name]) or (hints[item.name],) if kind is not type(None)]
        nullable = type(None) in get_args(hints[item.name])
        found.append(pa.field(item.name, _NARROW.get(item.name, _ARROW_TYPES[kinds[0]]), nullable=nullable))
    return found


_BASE_FIELDS = _fields_of(TrialIdentity, skip=("params",)) + _fields_of(EpochRecord, skip=("trial", "metrics"))

_PARAM_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


def param_columns(model_types: dict[str, type] | None = None) -> dict[str, pa.DataType]:
    """`param_<name>` for every training hyperparameter, then for each of the model's own (`model_types`: name ->
    the plain type of its values, from its annotation); K is stored as text, e.g. "10,20"."""
    columns = {}
    for name, info in Hyperparameters.model_fields.items():
        default = info.default
        kind = type(default) if default is not None else int  # samples_per_user: int | None
        columns[param_column(name)] = _PARAM_TYPES.get(kind, pa.string())
    for name, kind in (model_types or {}).items():
        columns[param_column(name)] = _PARAM_TYPES.get(kind, pa.string())
    return columns


def record_schema(ks: Iterable[int], model_types: dict[str, type] | None = None) -> pa.Schema:
    metrics = [pa.field(name, pa.float64()) for name in metric_columns(ks)]
    params = [pa.field(name, kind) for name, kind in param_columns(model_types).items()]
    return pa.schema(_BASE_FIELDS + metrics + params)


def param_values(hp: Hyperparameters) -> dict[str, Any]:
    """Every hyperparameter of `hp` (the model's own ones included) as its record column."""
    return {param_column(name): encode_param(value) for name, value in hp.model_dump().items()}


class RecordWriter:
    """Writes one trial's rows; each epoch's file appears complete or not at all."""

    def __init__(self, experiment_dir: str, trial_id: str, ks: Iterable[int], model_types: dict[str, type] | None = None):
        self.fs, root = filesystem(experiment_dir)
        self.trial_dir = trial_records_dir(self.fs, root, trial_id)
        self.schema = record_schema(ks, model_types)
        self.fs.create_dir(self.trial_dir, recursive=True)

    def path(self, epoch: int) -> str:
        return posixpath.join(self.trial_dir, epoch_file(epoch))

    def write(self, record: EpochRecord) -> None:
        table = pa.Table.from_pylist([record.row()], schema=self.schema)
        with storage.atomic_output(self.path(record.epoch), self.fs) as stream:
            pq.write_table(table, stream)

    def _files(self, prefix: str) -> list[str]:
        return [
            i.path for i in self.fs.get_file_info(pafs.FileSelector(self.trial_dir))
            if posixpath.basename(i.path).startswith(prefix) and i.path.endswith(".parquet")
        ]

    def end(self, stop_reason: StopReason) -> None:
        """The trial has ended: give its last epoch `stop_reason` unless it has one already (the trainable writes
        `finished` and `diverged` itself; a trial that Ray stopped or that failed for good has none), then compact."""
        epoch_files = self._files("epoch=")
        if not epoch_files:
            return  # no records, or compacted already
        frame = self._rows(epoch_files)
        last = frame[Column.EPOCH].idxmax()
        if not isinstance(frame.at[last, Column.STOP_REASON], str):
            frame.loc[last, [Column.STATUS, Column.STOP_REASON]] = [ENDED, StopReason(stop_reason).value]
        self._compact(frame, epoch_files)

    def compact(self) -> None:
        """Merge the ended trial's epoch files into trial.parquet, then remove them."""
        epoch_files = self._files("epoch=")
        if epoch_files:
            self._compact(self._rows(epoch_files), epoch_files)

    def _rows(self, epoch_files: list[str]) -> pd.DataFrame:
        """The trial's rows so far: the compacted file (if any) and the given epoch files, rolled-back epochs dropped.
        A file that cannot be read stops the compaction (OSError): it is never merged away, nor deleted."""
        unreadable: list[str] = []
        table = read_one_by_one(self.fs, self._files(COMPACTED_FILE) + epoch_files, unreadable)
        if unreadable:
            raise OSError(f"{', '.join(unreadable)}: cannot be read; the trial's records are left as they are")
        return _newest_attempts(table.to_pandas())

    def _compact(self, frame: pd.DataFrame, epoch_files: list[str]) -> None:
        schema = self.schema
        others = [column for column in frame.columns if column not in schema.names]  # the model's own parameters,
        if others:  # when this writer was made without their types (a trial ended by the driver)
            schema = pa.unify_schemas([schema, pa.Schema.from_pandas(frame[others], preserve_index=False)])
        table = pa.Table.from_pandas(frame.sort_values(Column.EPOCH), schema=schema, preserve_index=False)
        compacted = posixpath.join(self.trial_dir, COMPACTED_FILE)
        with storage.atomic_output(compacted, self.fs) as stream:
            pq.write_table(table, stream)
        with self.fs.open_input_file(compacted) as written:  # read it back before the epoch files go
            if pq.read_table(written).num_rows != table.num_rows:
                raise OSError(f"{compacted}: the compacted records read back short; the epoch files are kept")
        for path in epoch_files:
            self.fs.delete_file(path)


def record_files(experiment_dir: str) -> tuple[pafs.FileSystem, list[str]]:
    fs, root = filesystem(experiment_dir)
    selector = pafs.FileSelector(posixpath.join(root, RECORDS_DIR), recursive=True, allow_not_found=True)
    paths = [
        info.path
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File and is_record_file(posixpath.basename(info.path))
    ]
    return fs, sorted(paths)


def load(experiment_dir: str) -> pd.DataFrame:
    """One row per (trial, epoch), sorted by trial and epoch; an experiment without records gives an empty frame.

    Files are read with one schema unified over all of them (a column one file lacks is null there; an integer
    column another file stores as float becomes float). An unreadable (e.g. truncated) file is skipped with a
    warning naming it, and listed in the frame's `attrs["unreadable"]` (the report shows them)."""
    fs, paths = record_files(experiment_dir)
    unreadable: list[str] = []
    if not paths:
        frame = pd.DataFrame()
        frame.attrs["unreadable"] = unreadable
        return frame
    try:
        factory = pads.FileSystemDatasetFactory(fs, paths, pads.ParquetFileFormat())
        table = factory.finish(factory.inspect(promote_options="permissive")).to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
        table = read_one_by_one(fs, paths, unreadable)
    frame = table.to_pandas()
    if not frame.empty:
        frame = _newest_attempts(frame).sort_values([Column.TRIAL_ID, Column.EPOCH], ignore_index=True)
    frame.attrs["unreadable"] = unreadable
    return frame


def read_one_by_one(fs: pafs.FileSystem, paths: list[str], unreadable: list[str] | None = None) -> pa.Table:
    tables = []
    for path in paths:
        try:
            with fs.open_input_file(path) as f:
                tables.append(pq.read_table(f))
        except (pa.ArrowInvalid, OSError) as exc:
            warnings.warn(f"{path}: skipped, not a readable parquet file ({exc})", stacklevel=3)
            if unreadable is not None:
                unreadable.append(path)
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def _newest_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep, per trial, the epochs up to the last one its newest attempt wrote (later ones were rolled back to a
    checkpoint); then one row per epoch, the newest attempt's. An end that a later attempt went past (a failed
    attempt that `--resume-errored` resumed) is no end: only a trial's last row may say how it ended."""
    newest = frame.groupby(Column.TRIAL_ID)[Column.ATTEMPT].transform("max")
    reached = frame[frame[Column.ATTEMPT] == newest].groupby(Column.TRIAL_ID)[Column.EPOCH].max()
    frame = frame[frame[Column.EPOCH] <= frame[Column.TRIAL_ID].map(reached)]
    frame = frame.sort_values(Column.ATTEMPT).drop_duplicates([Column.TRIAL_ID, Column.EPOCH], keep="last")
    superseded = frame[Column.EPOCH] < frame[Column.TRIAL_ID].map(reached)
    if superseded.any() and frame.loc[superseded, Column.STOP_REASON].notna().any():
        frame = frame.copy()
        frame.loc[superseded, [Column.STATUS, Column.STOP_REASON]] = [RUNNING, None]
    return frame

