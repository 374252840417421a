"""What produced an experiment: command line, tuner's git revision, package versions (for the report)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PROVENANCE_FILE = "provenance.json"
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


def record(directory: str) -> None:
    """The first run's provenance; a resume adds its command line to `resumed_with`."""
    path = os.path.join(directory, PROVENANCE_FILE)
    now = current()
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        saved.setdefault("resumed_with", []).append(now["command"])
    else:
        saved = now
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".json", delete=False) as tmp:
        json.dump(saved, tmp, indent=2, sort_keys=True)
    os.replace(tmp.name, path)


def load(directory: str) -> dict:
    path = os.path.join(directory, PROVENANCE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
