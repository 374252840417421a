"""The package versions a submitted job compares with the machine that submitted it (tuner submit passes them in
TUNER_SUBMITTED_WITH): another Ray is refused, other differences are a note."""

from __future__ import annotations

import json

from tuner.errors import VersionMismatchError

_COMPARED = ("ray", "torch", "optuna", "pyarrow", "pydantic", "pandas", "numpy")


def package_versions() -> dict[str, str]:
    """This machine's versions of the packages a job's results depend on (a local build's +cpu/+cu tag dropped)."""
    from importlib import metadata

    found = {}
    for name in _COMPARED:
        try:
            found[name] = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return found


def check_submitter_versions(submitted: str) -> str | None:
    """In a job `tuner submit` started: refuse (SpecError) when this node's Ray is not the submitting machine's
    (the job, its runtime environment and its records were made for that one); other packages that differ give the
    returned note (None when all agree)."""
    try:
        theirs = json.loads(submitted)
    except ValueError:
        return None  # not ours to judge
    ours = package_versions()
    differ = {name: (theirs[name], ours.get(name, "none")) for name in theirs if theirs[name] != ours.get(name, "none")}
    if "ray" in differ:
        raise VersionMismatchError(
            f"this cluster runs Ray {differ['ray'][1]}, the machine that submitted the job Ray {differ['ray'][0]}: "
            "install the same versions on both (cluster.yaml's setup installs with constraints.txt), then submit again"
        )
    if not differ:
        return None
    return "note: this node's packages differ from the submitting machine's: " + ", ".join(
        f"{name} {mine} here, {submitter} there" for name, (submitter, mine) in differ.items())
