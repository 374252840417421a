"""`tuner run`, top to bottom: take the experiment's lock, decide how the run starts (tuning.start), start Ray while
the data is prepared, size the trials to the machine, run or resume the Ray Tune experiment, then settle every
trial's stop reason, export the Optuna study and summarise (experiment.settle)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tuner import storage, timeline
from tuner.errors import DataError, ExperimentError, SpecError, StorageError
from tuner.experiment import dataset_ids, provenance
from tuner.experiment.layout import experiment_dir as make_experiment_dir
from tuner.experiment.layout import save_spec
from tuner.experiment.lock import ExperimentLock
from tuner.experiment.set_aside import set_aside
from tuner.spec import ExperimentSpec
from tuner.tuning import ray_session, ray_state, resources, storage_faults
from tuner.tuning.start import Folder, Start, decide, read_folder
from tuner.vocabulary import LOST_DIR, Column

if TYPE_CHECKING:
    from tuner.experiment.settle import RunSummary

# What runs before Ray starts imports little (Ray itself, pydantic, pyarrow's filesystems); pandas, Ray Tune, Optuna
# and torch are imported by a helper thread while Ray starts (tuning.search, tuning.restore, the records), or where an
# existing experiment is read.


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
    first: list[dict] = []
    if spec.base is not None or spec.search.warm_start is not None:  # another experiment's records (pandas)
        from tuner.experiment.inherit import warm_start, with_base

        if spec.base is not None:
            spec = with_base(spec, make_experiment_dir(spec.storage, spec.base))
        first = warm_start(spec)  # read before anything starts: a wrong name is a one-line error at once
    with ExperimentLock(spec.storage, spec.name) as lock:
        folder = read_folder(directory, spec, fresh)
        start, told = decide(spec, folder, resume_errored, restart_errored)
        if start is Start.NOTHING:
            from tuner.experiment.settle import settle

            print(f"{directory}: all {spec.trial_count()} trials have ended; nothing to run", flush=True)
            return settle(spec, directory, {}, spec.trial_count(), rewrite_study=False)  # a rerun changes nothing
        return _run(spec, folder, start, told, lock, data_dir, resume_errored, restart_errored, first)


def _run(
    spec: ExperimentSpec, folder: Folder, start: Start, told: ExperimentSpec | None, lock: ExperimentLock,
    data_dir: str | None, resume_errored: bool, restart_errored: bool, first: list[dict],
) -> RunSummary:
    """`told`: the spec whose ended trials a new search is told (GROW: the finished experiment's; FROM_RECORDS: this
    one). `first`: configurations to run first (search.warm_start)."""
    directory = folder.directory
    timeline.mark("driver_ready")
    storage_faults.reset()
    if lock.taken_over and lock.taken_over.get("ray_group") and (killed := ray_session.stop_leftovers(
            lock.taken_over["ray_group"])):
        print(f"stopped {killed} process(es) of Ray's that the killed run (pid {lock.taken_over['pid']}) left behind",
              flush=True)
    started_ray, data = _start_ray_and_prepare(spec, data_dir, lock)
    print(data.summary(), flush=True)
    from tuner.tuning import restore, search  # imported by the helper thread already

    try:
        if folder.exists and (changed := provenance.data_changes(directory, data.split_hash, data.file_digests)):
            raise ExperimentError(
                f"{directory}: experiment {spec.name} was run on other data: {changed}; put the data back to resume "
                "it, or run with --fresh to start over, or --name to start a new experiment"
            )
        cluster = ray_session.cluster()
        plan = resources.plan(spec, resources.GraphSize(data.num_users, data.num_items, data.train.shape[1]), cluster)
        unmet = plan.unmet(cluster)
        if unmet and started_ray and not ray_session.joined_a_cluster():
            raise SpecError(f"{unmet} on this machine; ask for less, or leave resources: auto")
        if start is Start.FROM_RECORDS:
            _start_again_from_the_records(folder)
        print(f"{_what(spec, start, directory, told)}: {plan.describe(cluster)}", flush=True)
        if unmet:
            print(f"note: {unmet} now: trials wait until a node that has it joins (an autoscaling cluster adds one)",
                  flush=True)
        if note := spec.scheduler_note():
            print(note, flush=True)
        if start is Start.RESUME:
            _set_aside_lost_trials(folder)
            if restart_errored:
                set_aside(directory, [t for t, status in restore.trial_statuses(directory).items() if status == "ERROR"])
            tuner = restore.restored_tuner(spec, data, directory, plan, resume_errored, restart_errored)
        else:
            if start is Start.NEW and storage.is_dir(directory):
                storage.remove_tree(directory)  # --fresh, or it never got as far as a restorable state
            from tuner.experiment.read import Experiment

            earlier = Experiment(directory, told).trials if told is not None else None
            save_spec(directory, spec)
            dataset_ids.write(directory, data.user_ids, data.item_ids)
            tuner = search.new_tuner(spec, data, _parent(directory), directory, plan, earlier, first)
        provenance.record(directory, {"cpu": plan.cpu, "gpu": plan.gpu}, _model_origin(spec),
                          {Column.SPLIT_HASH: data.split_hash, "files": data.file_digests})
        pending_baselines = search.start_baselines(spec, data, directory)
        timeline.mark("fit_start")
        try:
            search.fit(tuner)
        except Exception as exc:  # Ray Tune's ending reads back files the full disk cut short
            if storage_faults.seen():
                raise storage_faults.run_stopped(spec, directory, storage_faults.seen()) from exc
            raise
        timeline.mark("fit_end")
        if storage_faults.seen():
            raise storage_faults.run_stopped(spec, directory, storage_faults.seen())
        search.finish_baselines(directory, pending_baselines)
    finally:
        if started_ray:
            ray_session.stop_in_background()  # Ray stops while the run settles
        if storage_faults.seen():
            ray_session.wait_stopped()
    from tuner.experiment.settle import settle

    try:
        summary = settle(spec, directory, restore.trial_statuses(directory), spec.trial_count())
    finally:
        ray_session.wait_stopped()  # whoever calls next (another run, ray.init, ray.shutdown) finds Ray stopped
    timeline.mark("settled")
    return summary


def _start_ray_and_prepare(spec: ExperimentSpec, data_dir: str | None, lock: ExperimentLock):
    """Ray's processes die with the thread that starts them, so Ray starts in this one while a helper thread imports
    the tuning code (Ray Tune, Optuna, torch) and prepares the data: the two overlap. Returns (whether this run
    started Ray, the data)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as helper:
        prepared = helper.submit(_import_and_prepare, spec, data_dir)
        started_ray = ray_session.start()
        if started_ray and ray_session.process_group():
            lock.note(ray_group=ray_session.process_group())
        timeline.mark("ray_ready")
        try:
            return started_ray, prepared.result()
        except DataError as exc:
            if ray_session.joined_a_cluster():  # a job on a cluster: the user reads this far from that node
                raise DataError(f"on node {socket.gethostname()} (the job's driver): {exc}; `tuner submit --data-dir` "
                                "names a folder there (or a shared one), `--set dataset.path=...` a file") from None
            raise


def _import_and_prepare(spec: ExperimentSpec, data_dir: str | None):
    from tuner.experiment import read, settle  # noqa: F401 (pandas and the records: imported here, off the critical path)
    from tuner.recsys.data import prepare
    from tuner.tuning import restore, search  # noqa: F401 (Ray Tune, Optuna, torch: imported off the critical path)

    return prepare(spec.dataset, data_dir)


def _what(spec: ExperimentSpec, start: Start, directory: str, told: ExperimentSpec | None) -> str:
    """How the run's plan line begins."""
    if start is Start.RESUME:
        return f"resuming {directory}"
    if start is Start.FROM_RECORDS:
        return f"{spec.name}, started again from its records"
    if start is Start.GROW and told is not None:
        return f"{spec.name}, growing from {told.trial_count()} to {spec.trial_count()} trials"
    return spec.name


def _set_aside_lost_trials(folder: Folder) -> None:
    """A driver that was killed (not stopped: Ctrl-C and SIGTERM save Ray's state) loses the trials Ray started after
    its last snapshot of the run: Tune cannot resume them, and the search runs others in their place. Their records
    move to <experiment>/lost/, kept but not counted, so that the experiment holds exactly its num_samples trials."""
    if lost := folder.lost_trials:
        set_aside(folder.directory, lost, LOST_DIR)
        print(f"{len(lost)} trial(s) had started after Ray's last snapshot of the killed run ({', '.join(lost)}): their "
              f"records are kept in {LOST_DIR}/, and the search runs new trials in their place", flush=True)


def _start_again_from_the_records(folder: Folder) -> None:
    """Ray's saved state cannot be read (a full disk cut it short, a copy was interrupted): it moves to damaged/,
    the trials the records show ended are kept and told to a new search, and the unfinished trials' records move to
    lost/ (the search runs others in their place)."""
    from tuner.experiment import records as records_module

    directory = folder.directory
    frame = records_module.load(directory)
    ended = {} if frame.empty else {
        trial_id: isinstance(rows[Column.STOP_REASON].iloc[-1], str) for trial_id, rows in frame.groupby(Column.TRIAL_ID)}
    unfinished = sorted(trial_id for trial_id, done in ended.items() if not done)
    aside = ray_state.set_aside(directory, carried_over=sorted(trial_id for trial_id, done in ended.items() if done))
    set_aside(directory, unfinished, LOST_DIR)
    file, why = next(iter(folder.damaged.items()))
    print(f"Ray's saved state of this experiment cannot be read ({file}: {why}); it is kept in {aside}/. "
          f"The trials the records show ended are kept and told to a new search"
          + (f"; {len(unfinished)} unfinished trial(s) moved to {LOST_DIR}/ and run again as new ones" if unfinished
             else ""), flush=True)


def _model_origin(spec: ExperimentSpec) -> dict:
    """Where the spec's model comes from (loaded already: the spec was checked against it)."""
    from tuner.recsys.models import locate

    source = locate(spec.model, spec.model_folder)
    source.load()
    return source.origin()


def _parent(directory: str) -> str:
    return directory.rstrip("/").rsplit("/", 1)[0]
