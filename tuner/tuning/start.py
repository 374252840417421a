"""How a run of an experiment starts — new, resumed, grown, started again from its records, or nothing to do — decided
in one pure function (`decide`) of the spec, the command's flags and what the experiment folder holds (`Folder`,
read once under the experiment's lock)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from enum import Enum

from tuner import storage
from tuner.errors import DataError, ExperimentError
from tuner.experiment import provenance
from tuner.experiment.layout import load_saved_spec, spec_differences
from tuner.experiment.set_aside import recorded_trials
from tuner.spec import ExperimentSpec
from tuner.tuning import ray_state
from tuner.vocabulary import RUNNING

# pandas (the records) and Ray Tune (its saved state) are imported where an existing experiment is read: a new run
# starts Ray first, while a helper thread imports them (tuning.run)


class Start(Enum):
    NEW = "new"  # a new Tune run: no experiment there, --fresh, or one that never got as far as a resumable state
    RESUME = "resume"  # Ray's saved run continues
    GROW = "grow"  # a finished experiment, more trials: a new Tune run told the earlier trials
    FROM_RECORDS = "from records"  # Ray's saved state is damaged: a new Tune run told the trials the records ended
    NOTHING = "nothing"  # every trial has ended: nothing runs, nothing changes


@dataclass(frozen=True)
class Folder:
    """What the experiment folder holds, as far as starting a run goes."""

    directory: str
    exists: bool
    saved_spec: ExperimentSpec | None = None
    unreadable_records: list[str] = field(default_factory=list)
    writable_by_others: list[str] = field(default_factory=list)
    ended: dict[str, int] = field(default_factory=dict)  # trials per stop reason (`running` included) of the records
    damaged: dict[str, str] = field(default_factory=dict)  # Ray's state files a rerun cannot read: file -> why
    started_at: str | None = None  # where the experiment was first run
    restorable: bool = False  # Ray saved it far enough to resume
    has_records: bool = False
    lost_trials: list[str] = field(default_factory=list)  # started after Ray's last snapshot of a killed run

    def every_trial_ended(self, spec: ExperimentSpec) -> bool:
        """Every trial of `spec` has ended: with a stop reason in its records, or failed before it wrote one."""
        ended = sum(count for state, count in self.ended.items() if state != RUNNING)
        return ended >= spec.trial_count() and not self.ended.get(RUNNING)


def read_folder(directory: str, spec: ExperimentSpec, fresh: bool) -> Folder:
    """The facts `decide` needs (none of an experiment that --fresh will start over)."""
    if fresh or not storage.is_dir(directory):
        return Folder(directory, exists=False)
    from tuner.experiment.read import Experiment
    from tuner.tuning import restore

    saved = load_saved_spec(directory)
    experiment = Experiment(directory, saved)
    found = experiment.records  # every record file, read once: how the trials ended, and which files cannot be read
    unreadable = [posixpath.relpath(path, storage.resolve(directory)[1]) for path in found.attrs["unreadable"]]
    damaged, writable = ray_state.damaged(directory), ray_state.writable_by_others(directory)
    restorable = restore.can_restore(directory)
    lost = restore.trials_no_snapshot_holds(  # Ray's snapshots are read only when they can be read and trusted
        directory, sorted(set(recorded_trials(directory)) - ray_state.carried_over(directory))
    ) if restorable and not damaged and not writable else []
    return Folder(
        directory, exists=True, saved_spec=saved,
        unreadable_records=unreadable,
        writable_by_others=writable,
        ended=experiment.counts,
        damaged=damaged,
        started_at=provenance.started_at(directory),
        restorable=restorable,
        has_records=not found.empty or bool(unreadable),
        lost_trials=lost,
    )


def decide(spec: ExperimentSpec, folder: Folder, resume_errored: bool = False,
           restart_errored: bool = False) -> tuple[Start, ExperimentSpec | None]:
    """How the run starts, and for GROW the spec the finished experiment ran (FROM_RECORDS: the spec itself, whose
    ended trials the new search is told). Raises for a run that must not start."""
    if not folder.exists:
        return Start.NEW, None
    directory, saved = folder.directory, folder.saved_spec
    assert saved is not None
    changed = spec_differences(saved, spec)
    growing = changed == ["search.num_samples"] and spec.trial_count() > saved.trial_count()
    if changed and not growing:
        raise ExperimentError(
            f"{directory}: experiment {spec.name} was started with another spec (changed: {', '.join(changed)}); "
            "run with --fresh to start over, or --name to start a new experiment"
            + (" (a search can grow, not shrink)" if changed == ["search.num_samples"] else "")
        )
    if unreadable := folder.unreadable_records:  # never a reason to rewrite a trial's history
        raise DataError(
            f"{directory}: {len(unreadable)} record file(s) cannot be read ({', '.join(unreadable[:3])}"
            f"{', ...' if len(unreadable) > 3 else ''}); restore them from a backup, or move them out of the "
            "experiment folder to rerun without those epochs (tuner report shows what can be read)"
        )
    if found := folder.writable_by_others:  # a resume unpickles Ray's state, and a pickle runs code
        raise ExperimentError(
            f"{found[0]}{f' and {len(found) - 1} more' if len(found) > 1 else ''}: a resume unpickles Ray's saved state "
            f"of the experiment, and a pickle runs code; check who changed it, then `chmod -R go-w {directory}` (or "
            "chown it) to resume, or run with --fresh to start over"
        )
    if growing:
        if not folder.every_trial_ended(saved):
            raise ExperimentError(
                f"{directory}: experiment {spec.name} has unfinished trials; finish them first (run it with "
                f"search.num_samples={saved.search.num_samples}), then run it with more"
            )
        return Start.GROW, saved
    if (not (resume_errored or restart_errored) and folder.every_trial_ended(spec)
            and (folder.damaged or not folder.lost_trials)):
        return Start.NOTHING, None
    if folder.started_at is not None and folder.started_at != directory:
        raise ExperimentError(
            f"{directory}: this experiment was started at {folder.started_at}, and Ray Tune's saved search would "
            "create its next trials there; move it back to resume it (tuner report, best and records read it "
            "anywhere), or run with --fresh"
        )
    if folder.damaged:
        return Start.FROM_RECORDS, spec
    if folder.restorable:
        return Start.RESUME, None
    if folder.has_records:
        raise ExperimentError(
            f"{directory}: the experiment has records but Ray never saved its state (the first run stopped within "
            "seconds of starting), so it cannot be resumed; run with --fresh to start over"
        )
    return Start.NEW, None
