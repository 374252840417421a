"""`tuner run`: start Ray while the data is prepared, size the trials to the machine, start or resume the Ray Tune
experiment, settle every trial's stop reason, export the Optuna study and summarise."""

from __future__ import annotations

import errno
import posixpath
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from tuner import storage, timeline
from tuner.errors import STORAGE_ERRNOS, DataError, ExperimentError, SpecError, StorageError, StorageFault
from tuner.experiment import dataset_ids, provenance
from tuner.experiment.layout import experiment_dir as make_experiment_dir
from tuner.experiment.layout import load_saved_spec, save_spec, spec_differences, trial_records_dir
from tuner.experiment.lock import ExperimentLock
from tuner.spec import ExperimentSpec
from tuner.tuning import ray_session, ray_state, resources, storage_faults
from tuner.vocabulary import (
    LOST_DIR,
    PER_USER_DIR,
    RECORDS_DIR,
    RESTARTED_DIR,
    RUNNING,
    STUDY_FILE,
    StopReason,
    trial_folder,
)

if TYPE_CHECKING:
    import pandas as pd

    from tuner.experiment.read import Experiment

# What runs before Ray starts imports little (Ray itself, pydantic, pyarrow's filesystems); pandas, torch, Ray Tune
# and Optuna are imported by a helper thread while Ray starts, or where a trial's records are read.


@dataclass
class RunSummary:
    experiment: Experiment  # the experiment as it stands now, read once the run has settled
    expected_trials: int
    study_path: str | None

    @property
    def spec(self) -> ExperimentSpec:
        return self.experiment.spec

    @property
    def experiment_dir(self) -> str:
        return self.experiment.directory

    @property
    def trials(self) -> pd.DataFrame:
        return self.experiment.trials

    @property
    def counts(self) -> dict[str, int]:
        return self.experiment.counts

    @property
    def errors(self) -> dict[str, str]:
        """trial id -> the error that ended it, for the trials that failed for good."""
        return self.experiment.errors

    @property
    def interrupted(self) -> bool:
        ended = sum(v for k, v in self.counts.items() if k != RUNNING)
        return ended < self.expected_trials

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.counts[StopReason.FAILED] or self.counts[StopReason.DIVERGED] else 0


def run_experiment(
    spec: ExperimentSpec,
    data_dir: str | None = None,
    fresh: bool = False,
    resume_errored: bool = False,
    restart_errored: bool = False,
) -> RunSummary:
    if storage.is_file(spec.storage):
        raise StorageError(f"storage: {spec.storage} is a file; expected a folder or a URI (s3://, gs://, file://)")
    storage.create_folder(spec.storage)
    directory = make_experiment_dir(spec.storage, spec.name)
    if spec.base is not None:
        spec = with_base(spec, make_experiment_dir(spec.storage, spec.base))
    warm_start = _warm_start(spec)  # read before anything starts: a wrong name is a one-line error at once
    existing = storage.is_dir(directory) and not fresh
    extending = None  # the spec a finished experiment ran, when this run adds trials to it
    if existing:
        saved = load_saved_spec(directory)
        changed = spec_differences(saved, spec)
        if changed == ["search.num_samples"] and spec.trial_count() > saved.trial_count():
            extending = saved
        elif changed:
            raise ExperimentError(
                f"{directory}: experiment {spec.name} was started with another spec (changed: {', '.join(changed)}); "
                "run with --fresh to start over, or --name to start a new experiment"
                + (" (a search can grow, not shrink)" if changed == ["search.num_samples"] else "")
            )
        _refuse_unreadable_records(directory)
        _refuse_state_others_could_have_written(directory)
    with ExperimentLock(spec.storage, spec.name) as lock:
        damaged = ray_state.damaged(directory) if existing else {}
        if extending is not None:
            if not _every_trial_ended(extending, directory):
                raise ExperimentError(
                    f"{directory}: experiment {spec.name} has unfinished trials; finish them first (run it with "
                    f"search.num_samples={extending.search.num_samples}), then run it with more"
                )
            return _run(spec, directory, lock, existing, data_dir, resume_errored, restart_errored, extending, warm_start)
        if (existing and not (resume_errored or restart_errored) and _every_trial_ended(spec, directory)
                and (damaged or not _set_aside_lost_trials(directory))):
            print(f"{directory}: all {spec.trial_count()} trials have ended; nothing to run", flush=True)
            return settle(spec, directory, {}, spec.trial_count(), rewrite_study=False)  # a rerun changes nothing
        origin = provenance.started_at(directory) if existing else None
        if origin is not None and origin != directory:
            raise ExperimentError(
                f"{directory}: this experiment was started at {origin}, and Ray Tune's saved search would create its "
                "next trials there; move it back to resume it (tuner report, best and records read it anywhere), "
                "or run with --fresh"
            )
        return _run(spec, directory, lock, existing, data_dir, resume_errored, restart_errored, warm_start=warm_start,
                    damaged=damaged)


def _refuse_state_others_could_have_written(directory: str) -> None:
    """A resume unpickles Ray's saved state, and a pickle runs code: state that someone else could have rewritten is
    not run until the user has looked at it."""
    if found := ray_state.writable_by_others(directory):
        raise ExperimentError(
            f"{found[0]}{f' and {len(found) - 1} more' if len(found) > 1 else ''}: a resume unpickles Ray's saved state "
            f"of the experiment, and a pickle runs code; check who changed it, then `chmod -R go-w {directory}` (or "
            "chown it) to resume, or run with --fresh to start over"
        )


def _refuse_unreadable_records(directory: str) -> None:
    """A record file that cannot be read (damaged on disk) is never a reason to rewrite a trial's history: nothing
    runs until it is dealt with."""
    from tuner.experiment import records as records_module

    unreadable = records_module.unreadable_files(directory)
    if unreadable:
        raise DataError(
            f"{directory}: {len(unreadable)} record file(s) cannot be read ({', '.join(unreadable[:3])}"
            f"{', ...' if len(unreadable) > 3 else ''}); restore them from a backup, or move them out of the "
            "experiment folder to rerun without those epochs (tuner report shows what can be read)"
        )


def _start_again_from_the_records(directory: str, damaged: dict[str, str]) -> None:
    """Ray's saved state cannot be read (a full disk cut it short, a copy was interrupted): it moves to damaged/,
    the trials the records show ended are kept and told to a new search, and the unfinished trials' records move to
    lost/ (the search runs others in their place)."""
    from tuner.experiment import records as records_module

    frame = records_module.load(directory)
    ended = {} if frame.empty else {
        trial_id: isinstance(rows["stop_reason"].iloc[-1], str) for trial_id, rows in frame.groupby("trial_id")}
    unfinished = sorted(trial_id for trial_id, done in ended.items() if not done)
    folder = ray_state.set_aside(directory, carried_over=sorted(trial_id for trial_id, done in ended.items() if done))
    _set_aside(directory, unfinished, LOST_DIR)
    first = next(iter(damaged.items()))
    print(f"Ray's saved state of this experiment cannot be read ({first[0]}: {first[1]}); it is kept in {folder}/. "
          f"The trials the records show ended are kept and told to a new search"
          + (f"; {len(unfinished)} unfinished trial(s) moved to {LOST_DIR}/ and run again as new ones" if unfinished
             else ""), flush=True)


def model_origin(spec: ExperimentSpec) -> dict:
    """Where the spec's model comes from (loaded already: the spec was checked against it)."""
    from tuner.recsys.models import locate

    source = locate(spec.model, spec.model_folder)
    source.load()
    return source.origin()


def with_base(spec: ExperimentSpec, directory: str) -> ExperimentSpec:
    """`base:` — `fixed` completed from the best finished trial of the experiment at `directory`: explicitly fixed
    values win, searched names (and the seed, with `seeds`) stay searched."""
    from tuner.experiment.read import Experiment
    from tuner.recsys.hyperparameters import Hyperparameters

    base = Experiment.open(directory).best_hyperparameters()
    skip = set(spec.searched()) | set(spec.fixed.model_fields_set)
    inherited = {k: v for k, v in base.model_dump().items() if k not in skip}
    fixed = Hyperparameters.model_validate({**inherited, **spec.fixed.model_dump(exclude_unset=True)})
    return spec.model_copy(update={"fixed": fixed})


def _every_trial_ended(spec: ExperimentSpec, directory: str) -> bool:
    """Every trial of the spec has ended: with a stop reason in its records, or failed before it wrote one."""
    from tuner.experiment.read import Experiment

    counts = Experiment(directory, spec).counts
    return sum(count for state, count in counts.items() if state != RUNNING) >= spec.trial_count() and not counts[RUNNING]


def _run(
    spec: ExperimentSpec, directory: str, lock: ExperimentLock, existing: bool, data_dir: str | None, resume_errored: bool,
    restart_errored: bool, extending: ExperimentSpec | None = None, warm_start: list[dict] | None = None,
    damaged: dict[str, str] | None = None,
) -> RunSummary:
    """`extending`: the spec of the finished experiment this run adds trials to. `damaged`: Ray's state files that
    cannot be read (ray_state.damaged): the run starts again from the records."""
    timeline.mark("driver_ready")
    storage_faults.reset()
    if lock.taken_over and lock.taken_over.get("ray_group") and (killed := ray_session.stop_leftovers(
            lock.taken_over["ray_group"])):
        print(f"stopped {killed} process(es) of Ray's that the killed run (pid {lock.taken_over['pid']}) left behind",
              flush=True)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as helper:
        # Ray's processes die with the thread that starts them, so Ray starts in this one while a helper thread
        # imports the tuning code (Ray Tune, Optuna, torch) and prepares the data: the two overlap.
        prepared = helper.submit(_import_and_prepare, spec, data_dir)
        started_ray = ray_session.start()
        if started_ray and ray_session.process_group():
            lock.note(ray_group=ray_session.process_group())
        timeline.mark("ray_ready")
        try:
            data = prepared.result()
        except DataError as exc:
            if ray_session.joined_a_cluster():  # a job on a cluster: the user reads this far from that node
                raise DataError(f"on node {socket.gethostname()} (the job's driver): {exc}; `tuner submit --data-dir` "
                                "names a folder there (or a shared one), `--set dataset.path=...` a file") from None
            raise
    print(data.summary(), flush=True)
    from tuner.tuning import restore as saved_run  # imported by the helper thread already
    from tuner.tuning import search

    try:
        if existing and (changed := provenance.data_changes(directory, data.split_hash, data.file_digests)):
            raise ExperimentError(
                f"{directory}: experiment {spec.name} was run on other data: {changed}; put the data back to resume "
                "it, or run with --fresh to start over, or --name to start a new experiment"
            )
        cluster = ray_session.cluster()
        plan = resources.plan(spec, resources.GraphSize(data.num_users, data.num_items, data.train.shape[1]), cluster)
        unmet = plan.unmet(cluster)
        if unmet and started_ray and not ray_session.joined_a_cluster():
            raise SpecError(f"{unmet} on this machine; ask for less, or leave resources: auto")
        if damaged:
            _start_again_from_the_records(directory, damaged)
            extending = spec
        restore = existing and extending is None and saved_run.can_restore(directory)
        if existing and not restore and extending is None and _has_records(directory):
            raise ExperimentError(
                f"{directory}: the experiment has records but Ray never saved its state (the first run stopped within "
                "seconds of starting), so it cannot be resumed; run with --fresh to start over"
            )
        if not restore and extending is None and storage.is_dir(directory):
            storage.remove_tree(directory)  # --fresh, or it never got as far as a restorable state
        if restore:
            what = f"resuming {directory}"
        elif damaged:
            what = f"{spec.name}, started again from its records"
        elif extending is not None:
            what = f"{spec.name}, growing from {extending.trial_count()} to {spec.trial_count()} trials"
        else:
            what = spec.name
        print(f"{what}: {plan.describe(cluster)}", flush=True)
        if unmet:
            print(f"note: {unmet} now: trials wait until a node that has it joins (an autoscaling cluster adds one)",
                  flush=True)
        if note := spec.scheduler_note():
            print(note, flush=True)
        if restore:
            _set_aside_lost_trials(directory)
        if restore and restart_errored:
            _set_aside(directory, [t for t, status in saved_run.trial_statuses(directory).items() if status == "ERROR"])
        if restore:
            tuner = saved_run.restored_tuner(spec, data, directory, plan, resume_errored, restart_errored)
        else:
            from tuner.experiment.read import Experiment

            earlier = Experiment(directory, extending).trials if extending is not None else None
            save_spec(directory, spec)
            dataset_ids.write(directory, data.user_ids, data.item_ids)
            tuner = search.new_tuner(spec, data, parent(directory), directory, plan, earlier, warm_start)
        provenance.record(directory, {"cpu": plan.cpu, "gpu": plan.gpu}, model_origin(spec),
                          {"split_hash": data.split_hash, "files": data.file_digests})
        pending_baselines = search.start_baselines(spec, data, directory)
        timeline.mark("fit_start")
        try:
            search.fit(tuner)
        except Exception as exc:  # Ray Tune's ending reads back files the full disk cut short
            if storage_faults.seen():
                raise _storage_fault(spec, directory, storage_faults.seen()) from exc
            raise
        timeline.mark("fit_end")
        if storage_faults.seen():
            raise _storage_fault(spec, directory, storage_faults.seen())
        search.finish_baselines(directory, pending_baselines)
    finally:
        if started_ray:
            ray_session.stop_in_background()  # Ray stops while the run settles
        if storage_faults.seen():
            ray_session.wait_stopped()
    try:
        summary = settle(spec, directory, saved_run.trial_statuses(directory), spec.trial_count())
    finally:
        ray_session.wait_stopped()  # whoever calls next (another run, ray.init, ray.shutdown) finds Ray stopped
    timeline.mark("settled")
    return summary


def _storage_fault(spec: ExperimentSpec, directory: str, fault: dict[str, str]) -> StorageFault:
    """One line for a run that a full disk (a quota, a read-only file system) stopped: where, how much room the rest
    of the run needs (estimated from what each recorded epoch took so far), and that the same command resumes."""
    from tuner.experiment import records as records_module

    where = f"{spec.storage}: {fault['reason']} (trial {fault['trial']} could not write)"
    resume = "then run the same command again: it resumes where it stopped, with every record kept"
    if fault["reason"] == STORAGE_ERRNOS[errno.EROFS]:
        return StorageFault(f"{where}; make it writable, {resume}")
    free, used = storage.free_bytes(directory), storage.folder_size(directory)
    epochs = len(records_module.load(directory))
    left = spec.trial_count() * spec.fixed.epochs - epochs
    need = f"; the rest of the run needs up to about {_size(used / max(epochs, 1) * left)}" if left > 0 else ""
    room = f"; {_size(free)} free" if free is not None else ""
    return StorageFault(f"{where}{room}{need}; free space, {resume}")


def _size(count: float) -> str:
    unit = "bytes"
    for larger in ("KiB", "MiB", "GiB"):
        if count < 1024:
            break
        count, unit = count / 1024, larger
    return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"


def _warm_start(spec: ExperimentSpec) -> list[dict]:
    """search.warm_start: the best finished configurations of the other experiment, its searched names only."""
    if spec.search.warm_start is None:
        return []
    from tuner.experiment.layout import resolve
    from tuner.experiment.read import Experiment
    from tuner.vocabulary import decode_param, param_column

    source = Experiment.open(resolve(spec.search.warm_start.experiment, spec.storage))
    finished = source.finished_trials().head(spec.search.warm_start.trials)
    if finished.empty:
        raise SpecError(f"search.warm_start.experiment: {source.directory} has no finished trial to start from")
    names = [name for name in spec.searched() if param_column(name) in finished]
    return [{name: decode_param(name, row[param_column(name)]) for name in names} for _, row in finished.iterrows()]


def _set_aside_lost_trials(directory: str) -> list[str]:
    """A driver that was killed (not stopped: Ctrl-C and SIGTERM save Ray's state) loses the trials Ray started after
    its last snapshot of the run: Tune cannot resume them, and the search runs others in their place. Their records
    move to <experiment>/lost/, kept but not counted, so that the experiment holds exactly its num_samples trials."""
    from tuner.tuning import restore as saved_run

    if not saved_run.can_restore(directory):
        return []
    fs, root = storage.resolve(directory)
    selector = pafs.FileSelector(posixpath.join(root, RECORDS_DIR), allow_not_found=True)
    recorded = [posixpath.basename(info.path).removeprefix(trial_folder(""))  # records/<id>/, or trial_id=<id>/
                for info in fs.get_file_info(selector) if info.type == pafs.FileType.Directory]
    lost = saved_run.trials_no_snapshot_holds(directory, sorted(set(recorded) - ray_state.carried_over(directory)))
    if lost:
        _set_aside(directory, lost, LOST_DIR)
        print(f"{len(lost)} trial(s) had started after Ray's last snapshot of the killed run ({', '.join(lost)}): their "
              f"records are kept in {LOST_DIR}/, and the search runs new trials in their place", flush=True)
    return lost


def _set_aside(directory: str, trial_ids: list[str], folder: str = RESTARTED_DIR) -> None:
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


def _has_records(directory: str) -> bool:
    from tuner.experiment import records as records_module

    return bool(records_module.record_files(directory)[1])


def _import_and_prepare(spec: ExperimentSpec, data_dir: str | None):
    from tuner.experiment import read  # noqa: F401 (pandas and the records: imported here, off the critical path)
    from tuner.recsys.data import prepare
    from tuner.tuning import restore, search  # noqa: F401 (Ray Tune, Optuna, torch: imported off the critical path)

    return prepare(spec.dataset, data_dir)


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


def parent(directory: str) -> str:
    return directory.rstrip("/").rsplit("/", 1)[0]


def settle(spec: ExperimentSpec, directory: str, statuses: dict[str, str], expected_trials: int,
           rewrite_study: bool = True) -> RunSummary:
    """Write the stop reason of every trial that ended without one (early-stopped or failed), export the study
    (every time something ran, even when no trial got as far as a record; else only when it is missing), then
    summarise.

    `statuses` are Ray's final trial states: TERMINATED (ended normally), ERROR (retries exhausted), or
    anything else (still pending or running: the run was interrupted).
    """
    from tuner.experiment import records as records_module
    from tuner.experiment.read import Experiment

    records = records_module.load(directory)
    if not records.empty:
        for trial_id, trial in records.groupby("trial_id"):
            last = trial.loc[trial["epoch"].idxmax()]
            status = statuses.get(trial_id)
            if not isinstance(last["stop_reason"], str) and status in ("TERMINATED", "ERROR"):
                writer = records_module.RecordWriter(directory, trial_id, spec.fixed.k)
                writer.end(StopReason.FAILED if status == "ERROR" else StopReason.EARLY_STOPPED)
    experiment = Experiment(directory, spec)
    prune_checkpoints(directory, [t for t, status in statuses.items() if status == "TERMINATED"])
    study_path = storage.join(directory, STUDY_FILE)
    if rewrite_study or not storage.is_file(study_path):
        from tuner.experiment.study_export import export_study

        export_study(spec, experiment.records, experiment.trials, directory)
    return RunSummary(experiment, expected_trials, study_path)
