"""What Ray Tune saved of an experiment, read through Tune's API: whether it can be resumed, the resumed Tuner,
which trials Ray's snapshots hold, and each trial's final status."""

from __future__ import annotations

import contextlib
import importlib
import logging
import pickle
import posixpath
import sys

import pyarrow.fs as pafs
from ray import tune

from tuner import storage
from tuner.errors import ExperimentError
from tuner.recsys.data import SplitData
from tuner.spec import ExperimentSpec
from tuner.tuning.resources import Plan
from tuner.tuning.search import prepare_tune, trainable_of


def can_restore(experiment_dir: str) -> bool:
    """Ray saved the experiment far enough to resume it: its Tuner (tuner.pkl) and at least one snapshot of the
    trials (experiment_state-*.json). A driver killed between the two leaves a tuner.pkl that Tune restores into an
    experiment that runs one trial and stops, on every rerun."""
    return tune.Tuner.can_restore(experiment_dir) and bool(_snapshots(experiment_dir)[1])


def _snapshots(experiment_dir: str) -> tuple[pafs.FileSystem, list[str]]:
    """Ray's snapshots of the experiment's trials (experiment_state-<time>.json, one per Tune run), newest first."""
    fs, root = storage.resolve(experiment_dir)
    paths = [
        info.path for info in fs.get_file_info(pafs.FileSelector(root))
        if posixpath.basename(info.path).startswith("experiment_state-") and info.path.endswith(".json")
    ]
    return fs, sorted(paths, reverse=True)


# Experiments that tuner started before it had layer packages pickled these under their old module names.
_MOVED_MODULES = {"tuner.search": "tuner.tuning.search", "tuner.trainable": "tuner.tuning.trainable"}


def _accept_state_saved_by_older_tuner() -> None:
    for old, new in _MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def restored_tuner(
    spec: ExperimentSpec, data: SplitData, experiment_dir: str, plan: Plan, resume_errored: bool, restart_errored: bool
) -> tune.Tuner:
    prepare_tune(plan)
    _accept_state_saved_by_older_tuner()
    try:
        return tune.Tuner.restore(
            experiment_dir,
            trainable=trainable_of(spec, data, experiment_dir, plan),
            resume_unfinished=True,
            resume_errored=resume_errored,
            restart_errored=restart_errored,
        )
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:  # what a damaged pickle raises
        raise ExperimentError(
            f"{experiment_dir}: Ray's experiment state (tuner.pkl) is damaged ({exc}); run with --fresh to start over "
            "(which deletes the experiment, records included)"
        ) from None


def trials_no_snapshot_holds(experiment_dir: str, trial_ids: list[str]) -> list[str]:
    """Those of `trial_ids` that none of Ray's snapshots of the experiment holds (experiment_state-*.json, one per Tune
    run of it: the runs before an extension have their own). Read newest first, and only as far as needed."""
    fs, snapshots = _snapshots(experiment_dir)
    unknown = set(trial_ids)
    for path in snapshots:
        if not unknown:
            break
        with _quiet_analysis():
            unknown -= {trial.trial_id for trial in tune.ExperimentAnalysis(path, storage_filesystem=fs).trials}
    return sorted(unknown)


@contextlib.contextmanager
def _quiet_analysis():
    """ExperimentAnalysis warns about every trial without results yet (a pending one): not news to a user."""
    logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def trial_statuses(experiment_dir: str) -> dict[str, str]:
    """trial id -> Ray's final status (TERMINATED, ERROR, PENDING, RUNNING, PAUSED)."""
    with _quiet_analysis():
        analysis = tune.ExperimentAnalysis(experiment_dir)
    return {trial.trial_id: trial.status for trial in analysis.trials}
