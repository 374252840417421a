"""Folder surgery on an experiment, each step kept rather than deleted: the records of trials that no longer count
move to a folder of their own, and an ended trial keeps only its newest checkpoint."""

from __future__ import annotations

import posixpath

import pyarrow.fs as pafs

from tuner import storage
from tuner.experiment.layout import trial_records_dir
from tuner.vocabulary import PER_USER_DIR, RECORDS_DIR, RESTARTED_DIR, trial_folder


def set_aside(directory: str, trial_ids: list[str], folder: str = RESTARTED_DIR) -> None:
    """Records and per-user metrics of trials that no longer count move to <experiment>/<folder>/trial_id=<id>/ —
    kept. --restart-errored: Ray runs each errored trial again under a new id, so the failed attempt goes to
    restarted/ (its error.txt, which Ray keeps in its own folder, is not counted either); lost trials go to lost/."""
    fs, root = storage.resolve(directory)
    for trial_id in trial_ids:
        target = posixpath.join(root, folder, trial_folder(trial_id))
        fs.create_dir(target, recursive=True)
        moves = {
            trial_records_dir(fs, root, trial_id): posixpath.join(target, RECORDS_DIR),
            posixpath.join(root, PER_USER_DIR, f"{trial_folder(trial_id)}.parquet"): posixpath.join(target, "per_user.parquet"),
        }
        for source, destination in moves.items():
            if fs.get_file_info(source).type != pafs.FileType.NotFound:
                fs.move(source, destination)


def recorded_trials(directory: str) -> list[str]:
    """The trials with a folder under records/ (records/<id>/, or trial_id=<id>/ in an older experiment)."""
    fs, root = storage.resolve(directory)
    selector = pafs.FileSelector(posixpath.join(root, RECORDS_DIR), allow_not_found=True)
    return sorted(posixpath.basename(info.path).removeprefix(trial_folder(""))
                  for info in fs.get_file_info(selector) if info.type == pafs.FileType.Directory)


def prune_checkpoints(directory: str, trial_ids: list[str]) -> None:
    """Keep only the newest checkpoint of each ended trial (trial folders are named by trial id)."""
    fs, root = storage.resolve(directory)
    for trial_id in trial_ids:
        selector = pafs.FileSelector(posixpath.join(root, trial_id), allow_not_found=True)
        checkpoints = sorted(
            info.path for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and posixpath.basename(info.path).startswith("checkpoint_")
        )
        for path in checkpoints[:-1]:
            fs.delete_dir(path)
