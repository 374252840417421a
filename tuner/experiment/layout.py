"""Where an experiment lives and what it was started with."""

from __future__ import annotations

import json
import os
import posixpath

import pyarrow.fs as pafs

from tuner import storage
from tuner.errors import ExperimentError
from tuner.spec import ExperimentSpec
from tuner.vocabulary import ERROR_FILE, LOST_DIR, RECORDS_DIR, RESTARTED_DIR, SPEC_FILE, record_folder, trial_folder


def experiment_dir(location: str, name: str) -> str:
    """<storage>/<name>; a local storage path is made absolute (Ray needs it so)."""
    if storage.is_uri(location):
        return storage.join(location, name)
    return os.path.join(os.path.abspath(os.path.expanduser(location)), name)


def resolve(experiment: str, location: str) -> str:
    """EXPERIMENT on the command line: a folder or URI holding a tuner experiment, else a name under storage."""
    if storage.is_file(storage.join(experiment, SPEC_FILE)):
        return experiment if storage.is_uri(experiment) else os.path.abspath(experiment)
    return experiment_dir(location, experiment)


def save_spec(directory: str, spec: ExperimentSpec) -> None:
    storage.write_text(storage.join(directory, SPEC_FILE), spec.model_dump_json(indent=2, exclude_unset=True))


def load_saved_spec(directory: str) -> ExperimentSpec:
    path = storage.join(directory, SPEC_FILE)
    if not storage.is_file(path):
        raise ExperimentError(f"{directory}: not a tuner experiment (no {SPEC_FILE}); check the name and --storage")
    try:
        return ExperimentSpec.model_validate_json(storage.read_text(path))
    except ValueError as exc:
        raise ExperimentError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None


def spec_differences(old: ExperimentSpec, new: ExperimentSpec) -> list[str]:
    """Dotted paths whose values differ (storage excluded: it is where, not what)."""
    a, b = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    return sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key) and key != "storage")


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True)}


def trial_errors(directory: str) -> dict[str, str]:
    """trial id -> the last line of the error that ended it for good (Ray's `<trial id>/error.txt` in the
    experiment folder: the exception and its message). Trials set aside (restarted/ by --restart-errored, lost/ by a
    rerun after a killed driver) are not counted: others ran in their place."""
    fs, root = storage.resolve(directory)
    selector = pafs.FileSelector(root, allow_not_found=True)
    set_aside = {
        posixpath.basename(info.path).removeprefix(trial_folder(""))
        for folder in (RESTARTED_DIR, LOST_DIR)
        for info in fs.get_file_info(pafs.FileSelector(posixpath.join(root, folder), allow_not_found=True))
    }
    folders = [
        info.path for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.Directory and posixpath.basename(info.path) not in set_aside
    ]
    candidates = [posixpath.join(folder, ERROR_FILE) for folder in folders]
    errors = {}
    for info in fs.get_file_info(candidates) if candidates else []:
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as stream:
                lines = [line.strip() for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
            errors[posixpath.basename(posixpath.dirname(info.path))] = lines[-1] if lines else "(empty error.txt)"
    return errors


def trial_records_dir(fs: pafs.FileSystem, root: str, trial_id: str) -> str:
    """records/<id>/, or records/trial_id=<id>/ where an experiment begun before December 2026 has it."""
    legacy = posixpath.join(root, RECORDS_DIR, trial_folder(trial_id))
    if fs.get_file_info(legacy).type == pafs.FileType.Directory:
        return legacy
    return posixpath.join(root, RECORDS_DIR, record_folder(trial_id))
