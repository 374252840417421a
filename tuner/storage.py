"""Experiment storage: a local path, a shared file system path, or an object-store URI (s3://, gs://, file://),
all through pyarrow's filesystems. Writes are atomic: a temporary file, then a rename (a single PUT on object
stores, where objects appear whole)."""

from __future__ import annotations

import os
import posixpath
import uuid

import pyarrow.fs as pafs


def is_uri(location: str) -> bool:
    return "://" in location


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path inside it."""
    if is_uri(location):
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def join(location: str, *parts: str) -> str:
    return posixpath.join(location, *parts) if is_uri(location) else os.path.join(location, *parts)


def is_dir(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def is_file(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def read_bytes(location: str) -> bytes:
    fs, path = resolve(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def read_text(location: str) -> str:
    return read_bytes(location).decode()


def write_bytes(location: str, data: bytes) -> None:
    fs, path = resolve(location)
    folder = posixpath.dirname(path)
    fs.create_dir(folder, recursive=True)
    temporary = posixpath.join(folder, f".tmp-{uuid.uuid4().hex}")
    with fs.open_output_stream(temporary) as stream:
        stream.write(data)
    fs.move(temporary, path)


def write_text(location: str, text: str) -> None:
    write_bytes(location, text.encode())


def remove_file(location: str) -> None:
    fs, path = resolve(location)
    fs.delete_file(path)


def remove_tree(location: str) -> None:
    fs, path = resolve(location)
    fs.delete_dir(path)
