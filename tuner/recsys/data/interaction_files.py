"""The `interactions` dataset: a user's own interaction files — CSV, TSV, parquet or RecBole atomic `.inter` — read
from a path or any URI pyarrow reads (file://, s3://, gs://).

One file (`dataset.path`) holds every interaction; or `dataset.train` / `dataset.test` (and `dataset.val`) hold the
dataset's own split. Ids may be integers or strings: they are kept as the dataset's own ids (`SplitData.user_ids`,
`item_ids`), whichever they are. Every problem is one line naming the file, the line (or parquet row) and the column.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import TYPE_CHECKING

import numpy as np

from tuner import storage
from tuner.errors import DataError, StorageError
from tuner.recsys.data.config import ColumnsSpec, DatasetSpec
from tuner.recsys.data.interactions import Interactions

if TYPE_CHECKING:
    import pandas as pd

ROLES = ("all", "train", "val", "test")
_SEPARATORS = {"csv": ",", "tsv": "\t", "inter": "\t"}
_DEFAULT_NAMES = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
_RECBOLE_NAMES = {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


def read_bytes(file: str) -> bytes:
    """A file's bytes, from a path or a URI; DataError naming it when it cannot be read."""
    try:
        fs, path = storage.resolve(file)
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except StorageError as exc:
        raise DataError(f"{file}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: cannot be read ({' '.join(str(exc).split()) or type(exc).__name__})") from None


def read_all(spec: DatasetSpec) -> dict[str, bytes]:
    """role -> the bytes of each file the spec names, read once (an object-store file is downloaded once)."""
    return {role: read_bytes(file) for role, file in spec.files().items()}


def fingerprint(contents: dict[str, bytes]) -> dict[str, str]:
    """role -> SHA-256 of the file's content (the split hash covers it: a changed file makes another split)."""
    return {role: hashlib.sha256(data).hexdigest() for role, data in contents.items()}


def read(spec: DatasetSpec, contents: dict[str, bytes]) -> Interactions:
    """Every file of the spec (`contents`: read_all's) as one Interactions, with given_test / given_val marking the
    dataset's own split."""
    frames = []
    for role, file in spec.files().items():
        frame = read_file(file, contents[role], spec.file_format(file), spec.columns or ColumnsSpec())
        frames.append((role, frame))
    import pandas as pd

    columns = set.intersection(*(set(frame.columns) for _, frame in frames))
    combined = pd.concat([frame[sorted(columns)] for _, frame in frames], ignore_index=True)
    roles = np.concatenate([np.full(len(frame), role) for role, frame in frames])
    split_files = "all" not in spec.files()
    return Interactions(
        users=_ids(combined["user"]),
        items=_ids(combined["item"]),
        ratings=combined["rating"].to_numpy(np.float32) if "rating" in columns else None,
        timestamps=combined["timestamp"].to_numpy(np.int64) if "timestamp" in columns else None,
        given_test=roles == "test" if split_files else None,
        given_val=roles == "val" if split_files and "val" in spec.files() else None,
    )


def _ids(column: pd.Series) -> np.ndarray:
    """Integer ids as int64 (so that they sort as numbers), else the ids as strings."""
    values = column.to_numpy(str)
    if all(_INTEGER.match(v) for v in values):
        return values.astype(np.int64)
    return values


def read_file(file: str, data: bytes, file_format: str, columns: ColumnsSpec) -> pd.DataFrame:
    """The file's (`data`) user and item ids as text, and its rating and timestamp (when it has them) as numbers."""
    if not data.strip():
        raise DataError(f"{file}: is empty; expected one interaction per line")
    frame, first_line = _parquet(file, data) if file_format == "parquet" else _text(file, data, file_format, columns)
    names = _RECBOLE_NAMES if file_format == "inter" else _DEFAULT_NAMES
    where = "row" if file_format == "parquet" else "line"
    picked = {}
    for role in ("user", "item", "rating", "timestamp"):
        wanted = getattr(columns, role)
        if wanted is None:
            if role in ("rating", "timestamp") and names[role] not in frame.columns:
                continue  # optional, and the file has none
            wanted = names[role]
        if wanted not in frame.columns:
            shown = ", ".join(map(str, frame.columns))
            raise DataError(f"{file}: has no column {wanted!r} for the {role} (its columns: {shown}); set "
                            f"dataset.columns.{role}")
        picked[role] = frame[wanted]
    import pandas as pd

    result = pd.DataFrame(picked)
    if result.empty:
        raise DataError(f"{file}: holds no interactions, only a header")
    for role in ("user", "item"):
        text = result[role].astype(str).str.strip()
        missing = (text == "") | result[role].isna() | (text.str.lower() == "nan")
        if missing.any():
            raise DataError(f"{file}: {where} {first_line + int(np.argmax(missing.to_numpy()))}: "
                            f"column {_name(getattr(columns, role), names[role])}: the {role} id is missing")
        result[role] = text
    if "rating" in result:
        result["rating"] = _numbers(file, result["rating"], "rating", _name(columns.rating, names["rating"]), where,
                                    first_line)
    if "timestamp" in result:
        result["timestamp"] = _timestamps(file, result["timestamp"], _name(columns.timestamp, names["timestamp"]),
                                          where, first_line)
    return result


def _name(given: str | int | None, default: str) -> str:
    return repr(given if given is not None else default)


def _text(file: str, data: bytes, file_format: str, columns: ColumnsSpec) -> tuple[pd.DataFrame, int]:
    """A CSV, TSV or .inter file as text columns, and the line number of its first interaction."""
    import pandas as pd

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{file}: line {line}: is not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as "
                        "UTF-8") from None
    header = not columns.by_position
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_SEPARATORS[file_format], header=0 if header else None, dtype=str,
                            keep_default_na=False, skip_blank_lines=False, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{file}: cannot be parsed as {file_format} ({' '.join(str(exc).split())})") from None
    if file_format == "inter":  # RecBole's header: name:type
        frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    return frame, 2 if header else 1


def _parquet(file: str, data: bytes) -> tuple[pd.DataFrame, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{file}: is not a readable parquet file ({' '.join(str(exc).split())})") from None
    return frame, 1


def _numbers(file: str, values: pd.Series, role: str, column: str, where: str, first_line: int) -> pd.Series:
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"{file}: {where} {first_line + index}: column {column}: {values.iloc[index]!r} is not a "
                        f"number; expected a numeric {role}")
    return numbers


def _timestamps(file: str, values: pd.Series, column: str, where: str, first_line: int) -> pd.Series:
    """Numbers as they are; date-times (ISO 8601) as seconds since the epoch."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    if not numbers.isna().any():
        return numbers
    dates = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    bad = (dates.isna() & numbers.isna()).to_numpy()
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"{file}: {where} {first_line + index}: column {column}: {values.iloc[index]!r} is neither a "
                        "number nor an ISO 8601 date-time; expected a timestamp")
    if numbers.notna().any():  # numbers and date-times mixed: which unit the numbers are in is anyone's guess
        number, date = int(np.argmax(numbers.notna().to_numpy())), int(np.argmax(numbers.isna().to_numpy()))
        raise DataError(f"{file}: {where} {first_line + number}: column {column}: {values.iloc[number]!r} is a number "
                        f"but {where} {first_line + date} holds the date-time {values.iloc[date]!r}; expected one or the "
                        "other throughout")
    return (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
