"""`tuner run` on Ray with 2 CPUs and tiny synthetic data: retries from checkpoints, divergence, ASHA, resume."""

import glob
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import torch
import yaml

from tests.conftest import epochs_written, kill_tree
from tuner.analysis.console import run_summary_text
from tuner.errors import SpecError
from tuner.experiment import baselines as baselines_file
from tuner.experiment import provenance
from tuner.experiment import records as records_module
from tuner.experiment.read import Experiment
from tuner.recsys.data import prepare
from tuner.recsys.models import build_model
from tuner.recsys.training import Trainer
from tuner.spec import validate_spec
from tuner.tuning.run import run_experiment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _spec(tmp_path, **changes):
    raw = {
        "name": "tiny",
        "model": "lightgcn",
        "dataset": {"name": "synthetic", "synthetic": {"num_users": 60, "num_items": 40, "interactions_per_user": 10}},
        "metric": "val/recall@10",
        "fixed": {"embedding_dim": 8, "num_layers": 1, "epochs": 6, "batch_size": 128, "k": [10], "eval_every": 1},
        "params": {"lr": {"type": "categorical", "choices": [0.01, 0.02]}},
        "search": {"sampler": "grid", "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "failure": {"max_failures": 2, "checkpoint_every": 2},
        "storage": str(tmp_path / "runs"),
    }
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return validate_spec(raw, "test")


@pytest.fixture(scope="module")
def ray_with_faults(tmp_path_factory):
    fault_dir = tmp_path_factory.mktemp("faults")
    os.environ["TUNER_TEST_FAULT_DIR"] = str(fault_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"worker_process_setup_hook": "tests.faults.install"})
    yield fault_dir
    ray.shutdown()


def _set_faults(fault_dir, **faults):
    (fault_dir / "faults.json").write_text(json.dumps(faults))
    for marker in fault_dir.glob("raised-*"):
        marker.unlink()


def assert_one_row_per_trial_epoch(records, trials):
    assert not records.duplicated(["trial_id", "epoch"]).any()
    for trial_id, rows in records.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, rows["epoch"].max() + 1)), trial_id
        last = rows.loc[rows["epoch"].idxmax()]
        assert last["status"] == "ended" and isinstance(last["stop_reason"], str)
    assert set(records["trial_id"]) == set(trials["trial_id"])


def optuna_trials(experiment_dir):
    """The Optuna trials inside the searcher Ray saved (trusted: our own experiment folder)."""
    newest = sorted(glob.glob(os.path.join(experiment_dir, "searcher-state-*.pkl")))[-1]
    with open(newest, "rb") as f:
        state = pickle.load(f)
    return state["_ot_study"].trials


def optuna_from_db(experiment_dir):
    """The study tuner exported to <experiment>/optuna.db."""
    import optuna

    return optuna.load_study(study_name=None, storage=f"sqlite:///{experiment_dir}/optuna.db")


def optuna_states(experiment_dir):
    return [trial.state.name for trial in optuna_trials(experiment_dir)]


def test_trial_that_raises_once_resumes_from_its_checkpoint(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults, raise_once_at_epoch=5)
    spec = _spec(tmp_path)
    summary = run_experiment(spec)
    assert summary.exit_code == 0 and summary.counts["finished"] == 2
    records = records_module.load(summary.experiment_dir)
    assert_one_row_per_trial_epoch(records, summary.trials)
    for _, rows in records.groupby("trial_id"):
        # epochs 1-4 from the first attempt; the checkpoint at epoch 4 is where the retry started
        assert list(rows.sort_values("epoch")["attempt"]) == [1, 1, 1, 1, 2, 2]
    # every start of every trial wrote what it ran with
    manifests = provenance.trial_manifests(summary.experiment_dir)
    assert sorted((m["trial_id"], m["attempt"]) for m in manifests) == sorted(
        (trial_id, attempt) for trial_id in set(records["trial_id"]) for attempt in (1, 2))
    assert {(m["device"], m["split_hash"]) for m in manifests} == {("cpu", records["split_hash"].iloc[0])}
    for trial_id in summary.trials["trial_id"]:  # checkpoints at epochs 2, 4, 6: only the newest is kept
        assert len(list((Path(summary.experiment_dir) / trial_id).glob("checkpoint_*"))) == 1

    # and the resumed trial ends exactly where an uninterrupted run does
    row = records[records["param_lr"] == 0.01].sort_values("epoch").iloc[-1]
    data = prepare(spec.dataset)
    hp = spec.trial_hyperparameters({"lr": 0.01})
    torch.manual_seed(hp.seed)
    model = build_model("lightgcn", data.num_users, data.num_items, torch.tensor(data.train), **hp.model_dump())
    uninterrupted = list(Trainer(model, data, hp).run())[-1]
    assert row["loss"] == pytest.approx(uninterrupted.loss, rel=1e-6)
    assert row["val/recall@10"] == pytest.approx(uninterrupted.metrics["val/recall@10"], abs=1e-9)


def test_diverged_trial_fails_once_and_is_not_retried(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults, nan_when_lr_at_least=0.3)
    spec = _spec(tmp_path, params={"lr": {"type": "categorical", "choices": [0.01, 0.5]}})
    summary = run_experiment(spec)
    assert summary.exit_code == 1
    assert (summary.counts["finished"], summary.counts["diverged"]) == (1, 1)
    records = records_module.load(summary.experiment_dir)
    diverged = records[records["stop_reason"] == "diverged"]
    assert len(diverged) == 1 and diverged.iloc[0]["epoch"] == 1
    trial_dir = Path(summary.experiment_dir) / "records" / f"trial_id={diverged.iloc[0]['trial_id']}"
    assert [p.name for p in trial_dir.glob("attempt=*")] == ["attempt=1"]
    assert sorted(optuna_states(summary.experiment_dir)) == ["COMPLETE", "FAIL"]
    assert summary.trials.iloc[0]["stop_reason"] == "finished"


def test_grid_whose_last_trial_to_end_diverges_completes(tmp_path, ray_with_faults):
    """The ordering that crashed whole runs: the grid's last trial to end is the diverged one, so telling Optuna
    FAIL makes GridSampler call study.stop() outside an objective (RuntimeError); the run must still settle."""
    _set_faults(ray_with_faults, nan_when_lr_at_least=0.3, nan_from_epoch=4, sleep_per_batch_when_lr_at_least=[0.3, 0.1])
    spec = _spec(tmp_path, params={"lr": {"type": "categorical", "choices": [0.01, 0.5]}})
    summary = run_experiment(spec)
    assert summary.exit_code == 1
    assert (summary.counts["finished"], summary.counts["diverged"]) == (1, 1)
    trials = {trial.state.name: trial for trial in optuna_trials(summary.experiment_dir)}
    assert set(trials) == {"COMPLETE", "FAIL"}
    assert trials["FAIL"].datetime_complete > trials["COMPLETE"].datetime_complete  # the diverged trial ended last
    diverged = summary.trials[summary.trials["stop_reason"] == "diverged"].iloc[0]
    assert diverged["epochs_run"] == 4
    assert (Path(spec.storage) / spec.name / "optuna.db").is_file()


def test_an_ablation_whose_only_trial_diverges_ends_and_reruns(tmp_path, ray_with_faults):
    """The audit's reproduction: a one-point grid whose trial diverges used to crash every run and rerun."""
    _set_faults(ray_with_faults)
    spec = _spec(tmp_path, params={"lr": {"type": "categorical", "choices": [1.0e30]}})
    for _ in range(2):  # the run, then a rerun of the finished experiment
        summary = run_experiment(spec)
        assert summary.exit_code == 1 and summary.counts["diverged"] == 1 and not summary.interrupted
        assert summary.study_path is not None and optuna_states(summary.experiment_dir) == ["FAIL"]
    # the rerun had nothing to do, and left the experiment as it was (its report would not change)
    assert "resumed_with" not in provenance.load(summary.experiment_dir)


def test_a_damaged_experiment_state_is_one_line(tmp_path, ray_with_faults):
    from tuner.errors import SpecError

    _set_faults(ray_with_faults)
    spec = _spec(tmp_path, fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 2, "batch_size": 128, "k": [10]})
    summary = run_experiment(spec)
    shutil.rmtree(next((Path(summary.experiment_dir) / "records").glob("trial_id=*")))  # not every trial has ended
    state = Path(summary.experiment_dir) / "tuner.pkl"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(SpecError, match=r"tuner.pkl\) is damaged .*run with --fresh to start over"):
        run_experiment(spec)


def test_trials_that_fail_for_good_are_counted_and_their_errors_shown(tmp_path, ray_with_faults):
    """Failing at epoch 1, before a single record: the run's summary and the report agree on 2 failed trials
    and show each trial's error."""
    from tuner.analysis.console import run_summary_text
    from tuner.analysis.report import NoResultsError, write_report

    _set_faults(ray_with_faults, raise_once_at_epoch=1)
    summary = run_experiment(_spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2}))
    assert summary.exit_code == 1 and summary.counts["failed"] == 2 and summary.trials.empty
    text = run_summary_text(summary)
    assert text.count("RuntimeError: injected fault at epoch 1") == 2 and "trials: 2 of 2 — 0 finished" in text
    with pytest.raises(NoResultsError):
        write_report(Experiment.open(summary.experiment_dir))
    report = (Path(summary.experiment_dir) / "report" / "report.md").read_text()
    assert "Trials: 2 — 0 finished, 0 early-stopped, 2 failed" in report
    assert report.count("RuntimeError: injected fault at epoch 1 |") == 2


def test_restart_errored_runs_the_failed_trials_again_and_reruns_do_not_crash(tmp_path, ray_with_faults):
    """Ray restarts an errored trial under a new id its searcher never suggested (OptunaSearch raised KeyError on
    its first result, and every later rerun crashed the same way)."""
    _set_faults(ray_with_faults, raise_once_at_epoch=2)
    spec = _spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2})
    assert run_experiment(spec).counts["failed"] == 2
    _set_faults(ray_with_faults)
    restarted = run_experiment(spec, restart_errored=True)
    assert restarted.counts == {"finished": 2, "early_stopped": 0, "failed": 0, "diverged": 0, "running": 0}
    assert restarted.errors == {} and len(restarted.trials) == 2
    first_attempts = list((Path(restarted.experiment_dir) / "restarted").glob("trial_id=*"))
    assert len(first_attempts) == 2 and all((a / "records").is_dir() for a in first_attempts)
    assert run_experiment(spec).counts["finished"] == 2  # and a plain rerun settles as well


def test_baselines_are_computed_alongside_the_trials(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    summary = run_experiment(_spec(tmp_path, baselines=["mostpop", "mf"], seeds=[0, 1]))
    rows = baselines_file.load(summary.experiment_dir)
    assert sorted(zip(rows["baseline"], rows["seed"].fillna(-1))) == [("mf (rank 8)", 0), ("mf (rank 8)", 1), ("mostpop", -1)]
    assert rows["test/recall@10"].between(0, 1).all()


def test_concurrent_trials_run_at_the_same_time(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults, sleep_per_batch=0.05)
    summary = run_experiment(_spec(tmp_path))  # 2 trials, max_concurrent 2, 2 CPUs
    records = records_module.load(summary.experiment_dir)
    started = records.groupby("trial_id")["trial_started"].first()
    computed = records.groupby("trial_id")["cumulative_seconds"].max()
    assert len(started) == 2
    # had one trial waited for the other, it would have started after the other's epochs had all been computed
    assert abs(started.iloc[0] - started.iloc[1]) < computed.min()


_COUNT_IDLE_WORKERS = """
import time, psutil, ray
from tuner.tuning import ray_session

def idle_workers():  # a worker is `python .../default_worker.py ...` until it names itself ray::IDLE
    commands = [p.cmdline() for p in psutil.Process().children(recursive=True)]
    return sum(c[0].startswith("ray::IDLE") or (len(c) > 1 and c[1].endswith("default_worker.py")) for c in commands)

ray_session.start()
time.sleep(1)  # Ray starts the processes of prestarted workers as the driver connects
before = idle_workers()
ray.get(ray.remote(lambda: None).remote())  # a task's worker stays, idle: the probe must see it
print(before, min(idle_workers(), 1))
ray.shutdown()
"""


def test_a_local_ray_prestarts_no_workers_that_trials_could_not_use():
    """Ray prestarts an idle worker per CPU for a new driver, but gives Tune's trial actors (they carry a runtime
    environment) new workers: on a small machine the unused ones only slowed the start-up."""
    out = subprocess.run([sys.executable, "-c", _COUNT_IDLE_WORKERS], capture_output=True, text=True, check=True, cwd=REPO,
                         env={k: v for k, v in os.environ.items() if k != "RAY_prestart_worker_first_driver"})
    assert out.stdout.split() == ["0", "1"]


def test_asha_stops_trials_and_they_are_never_ranked_as_finished(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    spec = _spec(
        tmp_path,
        params={"lr": {"type": "float", "low": 1e-4, "high": 0.2, "log": True}},
        search={"sampler": "random", "num_samples": 6, "max_concurrent": 2},
        scheduler={"kind": "asha", "grace_period": 1, "reduction_factor": 2},
        fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 8, "batch_size": 128, "k": [10], "eval_every": 1},
    )
    summary = run_experiment(spec)
    assert summary.exit_code == 0
    assert summary.counts["early_stopped"] >= 1 and summary.counts["finished"] >= 1
    assert summary.counts["early_stopped"] + summary.counts["finished"] == 6
    records = records_module.load(summary.experiment_dir)
    assert_one_row_per_trial_epoch(records, summary.trials)
    stopped = summary.trials[summary.trials["stop_reason"] == "early_stopped"]
    assert (stopped["epochs_run"] < 8).all()
    ranks = list(summary.trials["stop_reason"])
    assert ranks == sorted(ranks, key=lambda r: r != "finished")  # finished trials first, whatever their metric
    assert "RUNNING" not in optuna_states(summary.experiment_dir)
    # every ended trial is compacted, the ones ASHA let run to the end included
    assert list(Path(summary.experiment_dir, "records").glob("*/epoch=*")) == []


def _tuner_cli(*args, **kwargs):
    env = {**os.environ, "TUNER_OFFLINE": "1"}
    env.pop("TUNER_TEST_FAULT_DIR", None)
    return subprocess.Popen([sys.executable, "-m", "tuner", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def _cli_spec(tmp_path, sampler, num_samples, **changes):
    """A 30-epoch spec file for `tuner run` in a subprocess (no Ray left running in this process)."""
    if ray.is_initialized():
        ray.shutdown()
    spec = _spec(
        tmp_path,
        params={"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
        search={"sampler": sampler, "num_samples": num_samples, "max_concurrent": 2},
        fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 30, "batch_size": 32, "k": [10], "eval_every": 1},
        **changes,
    )
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    return spec, spec_file, Path(spec.storage) / spec.name


def _wait_for_epochs(driver, experiment_dir, at_least: int) -> None:
    """Until the records hold `at_least` epochs (or the driver has ended)."""
    deadline = time.time() + 240
    while sum(epochs_written(experiment_dir / "records").values()) < at_least and time.time() < deadline:
        if driver.poll() is not None:
            return
        time.sleep(0.2)


def _finished_run(spec, spec_file, experiment_dir, expected_trials: int):
    """Run the spec to its end; the records hold one row per (trial, epoch) and every trial has ended."""
    rerun = _tuner_cli("run", spec_file)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    assert "resuming" in output and f"trials: {expected_trials} of {expected_trials}" in output, output[-3000:]
    records = records_module.load(str(experiment_dir))
    from tuner.experiment.trials import trial_table

    trials = trial_table(records, spec.metric, spec.mode)
    assert len(trials) == expected_trials and set(trials["stop_reason"]) <= {"finished", "early_stopped"}
    assert_one_row_per_trial_epoch(records, trials)
    assert "RUNNING" not in optuna_states(str(experiment_dir))
    return records


def test_driver_killed_then_rerun_resumes(tmp_path):
    """SIGKILL, as in a crash: first between tuner.pkl and Ray's first snapshot of the trials (Tune would restore an
    experiment that runs one trial and stops, on every rerun: 'trials: 1 of 4', exit 130, forever), then mid-run.
    Each rerun picks up where the experiment stands."""
    spec, spec_file, experiment_dir = _cli_spec(tmp_path, "tpe", 4)
    driver = _tuner_cli("run", spec_file)
    deadline = time.time() + 120
    while not (experiment_dir / "tuner.pkl").exists() and time.time() < deadline:
        time.sleep(0.01)
    kill_tree(driver)  # the driver, the Ray instance it started and its trials
    assert not list(experiment_dir.glob("experiment_state-*"))

    rerun = _tuner_cli("run", spec_file)  # starts over
    _wait_for_epochs(rerun, experiment_dir, at_least=8)
    assert rerun.poll() is None
    kill_tree(rerun)

    _finished_run(spec, spec_file, experiment_dir, expected_trials=4)
    assert len(optuna_states(str(experiment_dir))) == 4


def test_ctrl_c_exits_130_and_the_rerun_finishes(tmp_path):
    spec, spec_file, experiment_dir = _cli_spec(tmp_path, "random", 3)
    driver = _tuner_cli("run", spec_file)
    _wait_for_epochs(driver, experiment_dir, at_least=1)
    second = subprocess.run([sys.executable, "-m", "tuner", "run", str(spec_file)], capture_output=True, text=True)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"experiment tiny is being run by pid {driver.pid}" in second.stderr  # one run at a time
    _wait_for_epochs(driver, experiment_dir, at_least=4)
    assert driver.poll() is None
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 130, output[-3000:]
    assert "interrupted: run the same command again to resume" in output
    _finished_run(spec, spec_file, experiment_dir, expected_trials=3)


@pytest.mark.filterwarnings("ignore:.*not a readable parquet file")  # polled while trials are being compacted
def test_sigterm_saves_the_run_exits_143_and_the_rerun_resumes(tmp_path):
    spec, spec_file, experiment_dir = _cli_spec(
        tmp_path, "random", 8, scheduler={"kind": "asha", "grace_period": 1, "reduction_factor": 2}
    )
    driver = _tuner_cli("run", spec_file)
    # a trial that ASHA stops says so in the records at once, not only when the run settles
    stopped: set = set()
    deadline = time.time() + 240
    while not stopped and driver.poll() is None and time.time() < deadline:
        records = records_module.load(str(experiment_dir))
        stopped = set(records.loc[records["stop_reason"] == "early_stopped", "trial_id"]) if not records.empty else set()
        time.sleep(0.2)
    assert stopped and driver.poll() is None
    driver.send_signal(signal.SIGTERM)  # what a batch scheduler, `timeout` or a container runtime sends
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 143, output[-3000:]
    assert "interrupted: run the same command again to resume" in output
    assert "Traceback" not in output and "SIGTERM received" not in output  # no stack dump, Python's or Ray's
    interrupted = records_module.load(str(experiment_dir))
    assert stopped <= set(interrupted.loc[interrupted["stop_reason"] == "early_stopped", "trial_id"])

    records = _finished_run(spec, spec_file, experiment_dir, expected_trials=8)
    for trial_id in stopped:  # left as they were
        before, after = interrupted[interrupted["trial_id"] == trial_id], records[records["trial_id"] == trial_id]
        assert list(after["epoch"]) == list(before["epoch"]) and after["stop_reason"].iloc[-1] == "early_stopped"


def test_state_saved_before_the_layer_packages_still_restores():
    """tuner.pkl of an experiment started by an older tuner names tuner.search / tuner.trainable."""
    import pickle

    from tuner.tuning import search, trainable

    old_pickle = b"ctuner.search\nEpochOptunaSearch\n."  # protocol 0: a class by module and name
    search._accept_state_saved_by_older_tuner()
    assert pickle.loads(old_pickle) is search.EpochOptunaSearch
    assert pickle.loads(b"ctuner.trainable\ntrain_trial\n.") is trainable.train_trial


def test_a_finished_search_grows_with_more_samples_and_keeps_what_it_learnt(tmp_path, ray_with_faults):
    """num_samples 3 -> 5: the same experiment and study, two trials more; the first three untouched."""
    _set_faults(ray_with_faults)
    search = {"sampler": "tpe", "num_samples": 3, "max_concurrent": 2}
    params = {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
    first = run_experiment(_spec(tmp_path, params=params, search=search))
    before = first.experiment.trials.set_index("trial_id")[["param_lr", "val/recall@10"]]
    with pytest.raises(SpecError, match="can grow, not shrink"):
        run_experiment(_spec(tmp_path, params=params, search={**search, "num_samples": 2}))
    grown = run_experiment(_spec(tmp_path, params=params, search={**search, "num_samples": 5}))
    assert grown.exit_code == 0 and grown.counts["finished"] == 5 and len(grown.trials) == 5
    after = grown.experiment.trials.set_index("trial_id")[["param_lr", "val/recall@10"]]
    assert after.loc[before.index].equals(before)  # the first trials are as they were
    study = optuna_from_db(grown.experiment_dir)
    assert [t.user_attrs["trial_id"] for t in study.trials[:3]] == list(
        first.experiment.trials.sort_values(["trial_started", "trial_id"])["trial_id"])
    assert len(study.trials) == 5
    assert len(optuna_trials(grown.experiment_dir)) == 5  # the live searcher was told the first three
    assert "trials: 5 of 5" in run_summary_text(grown)


def test_a_warm_started_search_runs_the_given_configurations_first(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    params = {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
    source = run_experiment(_spec(tmp_path, name="source", params=params,
                                  search={"sampler": "random", "num_samples": 3, "max_concurrent": 2}))
    best_lr = source.experiment.best_trial()["param_lr"]
    warm = run_experiment(_spec(tmp_path, name="warm", params=params, search={
        "sampler": "tpe", "num_samples": 2, "max_concurrent": 1, "warm_start": {"experiment": "source", "trials": 1}}))
    first = warm.experiment.trials.sort_values("trial_started").iloc[0]
    assert first["param_lr"] == pytest.approx(best_lr)


def test_mlflow_logs_every_trial_and_tensorboard_files_are_in_the_experiment_folder(tmp_path, ray_with_faults):
    import mlflow

    _set_faults(ray_with_faults)
    summary = run_experiment(_spec(tmp_path, logging={"mlflow": True}))
    mlflow.set_tracking_uri(f"sqlite:///{summary.experiment_dir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) == 2 and sorted(runs["params.lr"].astype(float)) == [0.01, 0.02]
    assert runs["metrics.val/recall_at_10"].notna().all()  # MLflow allows no '@' in names
    for trial_id in summary.trials["trial_id"]:  # `tensorboard --logdir <experiment>` finds every trial
        assert list((Path(summary.experiment_dir) / trial_id).glob("events.out.tfevents.*"))
