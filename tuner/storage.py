"""Where tuner reads and writes: a local path, a shared file system path, or an object-store URI (s3://, gs://,
file://), all through pyarrow's filesystems. Every write is atomic (`atomic_output`): a temporary file in the same
folder, then a rename (a single PUT on object stores, where objects appear whole). New files get the mode the
umask leaves. A base module: every layer may use it."""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import uuid
from contextlib import contextmanager
from typing import Iterator

import pyarrow.fs as pafs

from tuner.errors import StorageError, one_line


def is_uri(location: str) -> bool:
    return "://" in location


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path inside it (StorageError, one line, for a URI pyarrow cannot parse or reach)."""
    if is_uri(location):
        try:
            return pafs.FileSystem.from_uri(location)
        except (OSError, ValueError) as exc:  # an unknown scheme; a bucket whose region cannot be resolved
            raise StorageError(f"{location}: {one_line(exc)}") from None
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def join(location: str, *parts: str) -> str:
    return posixpath.join(location, *parts) if is_uri(location) else os.path.join(location, *parts)


def is_dir(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def is_file(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def create_folder(location: str) -> None:
    """The folder and its parents (StorageError, one line, where it cannot be made: a parent that is a file, no
    permission, a read-only file system)."""
    fs, path = resolve(location)
    try:
        fs.create_dir(path, recursive=True)
    except OSError as exc:
        reason = {errno.ENOTDIR: "a folder above it is a file"}.get(exc.errno or 0) or \
            (os.strerror(exc.errno).lower() if exc.errno else one_line(exc))
        raise StorageError(f"{location}: cannot be made a folder ({reason}); expected a folder or a URI") from None


def folder_size(location: str) -> int:
    """Bytes in the files under `location`."""
    fs, path = resolve(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sum(info.size or 0 for info in infos if info.type == pafs.FileType.File)


def free_bytes(location: str) -> int | None:
    """Space left for an unprivileged writer where `location` is (None for object stores)."""
    if is_uri(location):
        return None
    path = os.path.abspath(os.path.expanduser(location))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def read_bytes(location: str) -> bytes:
    fs, path = resolve(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def read_text(location: str) -> str:
    return read_bytes(location).decode()


@contextmanager
def atomic_output(location: str, filesystem: pafs.FileSystem | None = None) -> Iterator[pafs.NativeFile]:
    """A writable stream whose bytes appear at `location` whole or not at all: they go to a temporary file in the
    same folder (named `.tmp-…`, which no reader lists), renamed over `location` when the block ends, removed when
    it raises (Ctrl-C included). With `filesystem`, `location` is a path inside it."""
    fs, path = (filesystem, location) if filesystem is not None else resolve(location)
    folder = posixpath.dirname(path)
    fs.create_dir(folder, recursive=True)
    temporary = posixpath.join(folder, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(path)}")
    try:
        with fs.open_output_stream(temporary) as stream:
            yield stream
        fs.move(temporary, path)
    except BaseException:
        if fs.get_file_info(temporary).type == pafs.FileType.File:
            fs.delete_file(temporary)
        raise


def write_bytes(location: str, data: bytes) -> None:
    with atomic_output(location) as stream:
        stream.write(data)


def write_text(location: str, text: str) -> None:
    write_bytes(location, text.encode())


def remove_file(location: str) -> None:
    fs, path = resolve(location)
    fs.delete_file(path)


def remove_tree(location: str) -> None:
    fs, path = resolve(location)
    fs.delete_dir(path)
