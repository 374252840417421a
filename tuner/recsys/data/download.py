"""Locate a dataset's raw files in the data directory, downloading them when they are missing."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import platformdirs
from tqdm import tqdm

from tuner import storage
from tuner.errors import DataError
from tuner.recsys.data.sources import DatasetSource

DOWNLOAD_TIMEOUT_S = 30


def default_data_dir() -> Path:
    """`TUNER_DATA_DIR`, else the user cache directory."""
    env = os.environ.get("TUNER_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("tuner")) / "data"


def downloads_allowed() -> bool:
    return os.environ.get("TUNER_OFFLINE", "") in ("", "0")


def dataset_folder(source: DatasetSource, data_dir: Path, path: str | None) -> Path:
    """The folder holding the raw files: the spec's `dataset.path`, else `<data_dir>/<dataset folder>`."""
    if path is not None:
        return Path(path).expanduser()
    assert source.folder is not None, source.name
    return data_dir / source.folder


def missing_files(source: DatasetSource, folder: Path) -> list[str]:
    return [name for name in source.files if not (folder / name).is_file()]


def ensure_files(source: DatasetSource, folder: Path, *, allow_download: bool | None = None) -> Path:
    """Return `folder` once every raw file is in it; download what is missing, or fail in one line."""
    missing = missing_files(source, folder)
    if not missing:
        return folder
    url = source.download_url
    where = f"{', '.join(missing)} not found in {folder}"
    if url is None:
        raise DataError(f"dataset {source.name}: {where}")
    if allow_download is None:
        allow_download = downloads_allowed()
    if not allow_download:
        raise DataError(f"dataset {source.name}: {where}; downloads are off (TUNER_OFFLINE); get them from {url}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if source.archive_url:
            _download_archive(source.archive_url, folder, missing)
        else:
            for name in missing:
                _download(source.file_urls[name], folder / name)
    except (OSError, zipfile.BadZipFile) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"dataset {source.name}: {where} and the download from {url} failed ({reason})") from exc
    still_missing = missing_files(source, folder)
    if still_missing:
        raise DataError(f"dataset {source.name}: {url} did not provide {', '.join(still_missing)}")
    return folder


def _download(url: str, target: Path) -> None:
    """Stream `url` to `target` with a progress bar; the file appears only when complete."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, storage.atomic_output(str(target)) as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as progress:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                progress.update(len(chunk))


def _download_archive(url: str, folder: Path, wanted: list[str]) -> None:
    """Download a zip whose top folder is `folder.name` and extract the wanted files into `folder`."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        archive = Path(scratch) / "archive.zip"
        _download(url, archive)
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")}
            for name in wanted:
                if name in members:
                    with zf.open(members[name]) as src, storage.atomic_output(str(folder / name)) as dst:
                        shutil.copyfileobj(src, dst)
