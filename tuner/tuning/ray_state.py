"""Ray Tune's own files at the top of an experiment folder (tuner.pkl, experiment_state-*.json, the searcher's and
the search generator's state): which of them a rerun cannot read, and setting those aside so that the rerun can
start a new Tune run told what the records hold. Reads the files, never unpickles them (a pickle runs code)."""

from __future__ import annotations

import grp
import json
import os
import posixpath
import pwd
import stat
import time

import pyarrow.fs as pafs

from tuner import storage
from tuner.vocabulary import DAMAGED_DIR

CARRIED_OVER_FILE = "carried_over.json"  # in damaged/<time>/: the trials the new search was told

TUNER_FILE = "tuner.pkl"
_PICKLE_PROTOCOL = b"\x80"  # how a pickle of protocol 2 or later begins
_STATE_PREFIXES = ("experiment_state-", "search_gen_state-", "searcher-state-", "basic-variant-state-")


def state_files(experiment_dir: str) -> list[str]:
    """The names of Ray's state files in the experiment folder."""
    fs, root = storage.resolve(experiment_dir)
    return sorted(
        name for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        if info.type == pafs.FileType.File
        and ((name := posixpath.basename(info.path)) == TUNER_FILE or name.startswith(_STATE_PREFIXES))
    )


def writable_by_others(experiment_dir: str) -> list[str]:
    """'<path> (<who>, mode <octal>)' for the experiment folder and each of Ray's state files in it that someone other
    than the user running tuner could have written: a resume unpickles them, and a pickle runs code. Writable by
    everyone; by a group other than the owner's own (a user private group, as umask 002 leaves files, is the
    owner's); owned by another user (root aside). Local folders only: an object store has its own access rules."""
    fs, root = storage.resolve(experiment_dir)
    if not isinstance(fs, pafs.LocalFileSystem):
        return []
    found = []
    for path in [root, *(posixpath.join(root, name) for name in state_files(experiment_dir))]:
        info = os.stat(path)
        mode, who = stat.S_IMODE(info.st_mode), None
        if mode & stat.S_IWOTH:
            who = "writable by everyone"
        elif mode & stat.S_IWGRP and _name(grp.getgrgid, info.st_gid) != _name(pwd.getpwuid, info.st_uid):
            who = f"writable by group {_name(grp.getgrgid, info.st_gid)}"
        elif info.st_uid not in (os.geteuid(), 0):
            who = f"owned by {_name(pwd.getpwuid, info.st_uid)}"
        if who:
            found.append(f"{path} ({who}, mode {mode:04o})")
    return found


def _name(lookup, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:  # no such user or group on this machine
        return str(number)


def damaged(experiment_dir: str) -> dict[str, str]:
    """name -> why it cannot be read, for each of Ray's state files that is cut short or garbled (a full disk, a
    crash mid-copy): an empty file, a pickle (Ray pickles some files it names .json) that does not end with pickle's
    STOP opcode, JSON that does not parse."""
    fs, root = storage.resolve(experiment_dir)
    problems = {}
    for name in state_files(experiment_dir):
        with fs.open_input_stream(posixpath.join(root, name)) as stream:
            content = stream.read()
        if not content:
            problems[name] = "empty"
        elif content.startswith(_PICKLE_PROTOCOL):
            if not content.endswith(b"."):
                problems[name] = f"a pickle cut short at {len(content)} bytes"
        else:
            try:
                json.loads(content)
            except ValueError as exc:
                problems[name] = f"not JSON: {str(exc).splitlines()[0]}"
    return problems


def set_aside(experiment_dir: str, carried_over: list[str]) -> str:
    """Move every one of Ray's state files to <experiment>/damaged/<time>/ (kept, not deleted), with the list of the
    trials the new search is told (`carried_over`: no snapshot of Ray's holds them any more); returns that folder."""
    fs, root = storage.resolve(experiment_dir)
    folder = posixpath.join(DAMAGED_DIR, time.strftime("%Y%m%d-%H%M%S"))
    fs.create_dir(posixpath.join(root, folder), recursive=True)
    for name in state_files(experiment_dir):
        fs.move(posixpath.join(root, name), posixpath.join(root, folder, name))
    storage.write_text(storage.join(experiment_dir, folder, CARRIED_OVER_FILE), json.dumps(sorted(carried_over)))
    return folder


def carried_over(experiment_dir: str) -> set[str]:
    """The trials that runs started again from the records were told (set_aside's lists)."""
    fs, root = storage.resolve(storage.join(experiment_dir, DAMAGED_DIR))
    trial_ids: set[str] = set()
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        path = posixpath.join(info.path, CARRIED_OVER_FILE)
        if fs.get_file_info(path).type == pafs.FileType.File:
            with fs.open_input_stream(path) as stream:
                trial_ids.update(json.loads(stream.read()))
    return trial_ids
