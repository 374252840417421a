"""Where an experiment lives and what it was started with."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from pathlib import Path

from tuner.errors import SpecError
from tuner.spec import ExperimentSpec

SPEC_FILE = "tuner-spec.json"


def experiment_dir(storage: str, name: str) -> str:
    """<storage>/<name>; a local storage path is made absolute (Ray needs it so)."""
    if "://" in storage:
        return posixpath.join(storage, name)
    return os.path.join(os.path.abspath(os.path.expanduser(storage)), name)


def resolve(experiment: str, storage: str) -> str:
    """EXPERIMENT on the command line: a folder holding a tuner experiment, else a name under storage."""
    if "://" not in experiment and (Path(experiment) / SPEC_FILE).is_file():
        return os.path.abspath(experiment)
    return experiment_dir(storage, experiment)


def save_spec(directory: str, spec: ExperimentSpec) -> None:
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".json", delete=False) as tmp:
        tmp.write(spec.model_dump_json(indent=2, exclude_unset=True))
    os.replace(tmp.name, os.path.join(directory, SPEC_FILE))


def load_saved_spec(directory: str) -> ExperimentSpec:
    path = os.path.join(directory, SPEC_FILE)
    try:
        with open(path) as f:
            return ExperimentSpec.model_validate_json(f.read())
    except FileNotFoundError:
        raise SpecError(f"{directory}: not a tuner experiment (no {SPEC_FILE}); check the name and --storage") from None
    except ValueError as exc:
        raise SpecError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None


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
