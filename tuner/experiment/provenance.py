"""What produced an experiment: command line, tuner's git revision, package versions (for the report)."""

from __future__ import annotations

import functools
import json
import platform
import posixpath
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pyarrow.fs as pafs

from tuner import storage
from tuner.errors import DataError
from tuner.vocabulary import MANIFESTS_DIR, PROVENANCE_FILE, RECORDS_DIR, Column, trial_folder

PACKAGES = ("tuner", "torch", "torch_geometric", "ray", "optuna", "numpy", "pandas", "pyarrow", "pydantic")


def git_revision() -> str:
    source = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return revision + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def current() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "command": " ".join(["tuner", *sys.argv[1:]]) if sys.argv else "",
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "packages": versions,
    }


def record(directory: str, trial_resources: dict[str, float], model: dict | None = None,
           data: dict | None = None) -> None:
    """The first run's provenance; a resume adds its command line to `resumed_with`. `trial_resources` (the CPUs
    and GPUs each trial holds, as `resources: auto` resolved them) and `model` (where the model came from: its
    distribution and version, or its module's file and SHA-256) are the latest run's; `data` (the split hash and
    each data file's SHA-256) is the first run's, which every later run must match (`data_changes`)."""
    now = current()
    saved = load(directory)
    if saved:
        saved.setdefault("resumed_with", []).append(now["command"])
    else:
        saved = {**now, "started_at": directory}
    if data is not None:
        saved.setdefault("data", data)
    saved["trial_resources"] = trial_resources
    if model is not None:
        saved["model"] = model
    storage.write_text(storage.join(directory, PROVENANCE_FILE), json.dumps(saved, indent=2, sort_keys=True))


def load(directory: str) -> dict:
    path = storage.join(directory, PROVENANCE_FILE)
    if not storage.is_file(path):
        return {}
    try:
        return json.loads(storage.read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: is damaged ({exc.msg}, line {exc.lineno}); it only records how the experiment was made: "
            "remove it and run the command again"
        ) from None


def data_changes(directory: str, split_hash: str, file_digests: dict) -> str | None:
    """What differs between the data the experiment was run on and the data now (None: the same): the files whose
    content changed, or the split hash when the experiment predates file digests (its trials' manifests hold it)."""
    recorded = load(directory).get("data")
    if recorded is None:
        hashes = {m[Column.SPLIT_HASH] for m in trial_manifests(directory) if Column.SPLIT_HASH in m}
        return None if not hashes or hashes == {split_hash} else f"split {', '.join(sorted(hashes))} became {split_hash}"
    if recorded[Column.SPLIT_HASH] == split_hash:
        return None
    changed = sorted(name for name in set(recorded["files"]) | set(file_digests)
                     if recorded["files"].get(name) != file_digests.get(name))
    what = f"{', '.join(changed)} changed" if changed else "tuner's way of splitting changed"
    return f"{what} (split {recorded[Column.SPLIT_HASH]} became {split_hash})"


def started_at(directory: str) -> str | None:
    """Where the experiment was when its first run started (None for experiments from before this was kept)."""
    return load(directory).get("started_at")


def trial_resources(directory: str, spec) -> dict[str, float]:
    """The CPUs and GPUs each of the experiment's trials held: as recorded by its run, else as its spec says
    (`auto` before any run: one CPU)."""
    recorded = load(directory).get("trial_resources")
    if recorded:
        return recorded
    return {"cpu": 1.0, "gpu": 0.0} if spec.resources == "auto" else spec.resources.model_dump()




@functools.cache
def _this_process_code() -> dict:
    """tuner's revision, Python and packages of this (worker) process: asked once (two git calls), not per trial."""
    facts = current()
    facts.pop("command")  # a worker's command line is Ray's, not the user's
    return facts


def next_attempt(directory: str, trial_id: str) -> int:
    """The number of this (re)start of the trial: 1 + the attempts begun before, each of which wrote its manifest
    first (experiments begun before December 2026 also marked them with records/trial_id=<id>/attempt=<n> files)."""
    begun = [0]
    for folder, prefix in ((MANIFESTS_DIR, f"{trial_folder(trial_id)}.attempt="),
                           (posixpath.join(RECORDS_DIR, trial_folder(trial_id)), "attempt=")):
        fs, root = storage.resolve(storage.join(directory, folder))
        for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
            name = posixpath.basename(info.path)
            if name.startswith(prefix) and (number := name.removeprefix(prefix).removesuffix(".json")).isdigit():
                begun.append(int(number))
    return max(begun) + 1


def record_trial(directory: str, trial_id: str, attempt: int, **facts) -> None:
    """What one start of one trial ran with — the worker's own tuner revision, Python and packages, plus `facts`
    (device, split hash, seed) — in <experiment>/manifests/trial_id=<id>.attempt=<n>.json. A resume with other
    code or packages then shows in the report."""
    manifest = {Column.TRIAL_ID: trial_id, Column.ATTEMPT: attempt, **_this_process_code(), **facts}
    storage.write_text(_manifest_path(directory, trial_id, attempt), json.dumps(manifest, indent=2, sort_keys=True))


def _manifest_path(directory: str, trial_id: str, attempt: int) -> str:
    return storage.join(directory, MANIFESTS_DIR, f"{trial_folder(trial_id)}.attempt={attempt}.json")


def record_trial_error(directory: str, trial_id: str, attempt: int, error: str) -> None:
    """The error that ended this attempt, in its manifest (`trial_error` reads it: an attempt that fails the same
    way as the one before is not retried again)."""
    path = _manifest_path(directory, trial_id, attempt)
    fresh = {Column.TRIAL_ID: trial_id, Column.ATTEMPT: attempt}
    manifest = json.loads(storage.read_text(path)) if storage.is_file(path) else fresh
    storage.write_text(path, json.dumps({**manifest, "error": error}, indent=2, sort_keys=True))


def trial_error(directory: str, trial_id: str, attempt: int) -> str | None:
    path = _manifest_path(directory, trial_id, attempt)
    try:
        return json.loads(storage.read_text(path)).get("error") if storage.is_file(path) else None
    except ValueError:
        return None


def trial_manifests(directory: str) -> list[dict]:
    fs, root = storage.resolve(storage.join(directory, MANIFESTS_DIR))
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    manifests = []
    for info in sorted(infos, key=lambda i: i.path):
        with fs.open_input_stream(info.path) as stream:
            try:
                manifests.append(json.loads(stream.read()))
            except ValueError:
                continue  # a manifest cut short by a crash: the attempt's records still count
    return manifests
