"""`tuner run` on Ray with 2 CPUs and tiny synthetic data: retries from checkpoints, divergence, ASHA, resume."""

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray
import torch

from tests.tuning_helpers import (
    assert_invariants,
    assert_live_study_is_the_export,
    optuna_from_db,
    optuna_states,
    optuna_trials,
    tiny_spec,
)
from tuner.console import run_summary_text
from tuner.errors import DataError, ExperimentError, SpecError
from tuner.experiment import baselines as baselines_file
from tuner.experiment import provenance
from tuner.experiment import records as records_module
from tuner.experiment.read import Experiment
from tuner.recsys.data import prepare
from tuner.recsys.models import build_model
from tuner.recsys.training import Trainer
from tuner.tuning.run import run_experiment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


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
    for marker in [*fault_dir.glob("raised-*"), *fault_dir.glob("arrived-*")]:
        marker.unlink()


def test_trial_that_raises_once_resumes_from_its_checkpoint(tmp_path, ray_with_faults, capfd):
    _set_faults(ray_with_faults, raise_once_at_epoch=5)
    spec = tiny_spec(tmp_path)
    summary = run_experiment(spec)
    assert summary.exit_code == 0 and summary.counts["finished"] == 2
    # each failed attempt is one line naming the error and where its traceback is; Ray's own traceback is left out
    out, err = capfd.readouterr()
    for trial_id in summary.trials["trial_id"]:
        assert (f"trial {trial_id} failed (RuntimeError: injected fault at epoch 5); retrying it from its last "
                f"checkpoint ({summary.experiment_dir}/{trial_id}/error.txt has the whole traceback)") in out
    assert "Traceback" not in out + err and "Trial task failed" not in out + err
    records = assert_invariants(summary.experiment_dir).records
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
    spec = tiny_spec(tmp_path, params={"lr": {"type": "categorical", "choices": [0.01, 0.5]}})
    summary = run_experiment(spec)
    assert summary.exit_code == 1
    assert (summary.counts["finished"], summary.counts["diverged"]) == (1, 1)
    records = records_module.load(summary.experiment_dir)
    diverged = records[records["stop_reason"] == "diverged"]
    assert len(diverged) == 1 and diverged.iloc[0]["epoch"] == 1
    attempts = [m["attempt"] for m in provenance.trial_manifests(summary.experiment_dir)
                if m["trial_id"] == diverged.iloc[0]["trial_id"]]
    assert attempts == [1]
    assert sorted(optuna_states(summary.experiment_dir)) == ["COMPLETE", "FAIL"]
    assert_invariants(summary.experiment_dir)
    assert summary.trials.iloc[0]["stop_reason"] == "finished"


def test_a_collapsed_trial_ends_with_its_own_stop_reason_and_its_metrics(tmp_path, ray_with_faults):
    """Told apart from diverged: it ended itself with real (poor) metrics, Optuna gets its value, it is not retried,
    and the run's exit code stays 0."""
    _set_faults(ray_with_faults, collapse_when_lr_at_least=0.015)
    summary = run_experiment(tiny_spec(tmp_path))  # lr 0.01 and 0.02, 6 epochs
    assert summary.exit_code == 0 and (summary.counts["finished"], summary.counts["collapsed"]) == (1, 1)
    collapsed = summary.trials[summary.trials["stop_reason"] == "collapsed"].iloc[0]
    assert collapsed["epochs_run"] == 3 and collapsed["val/recall@10"] >= 0
    assert [m["attempt"] for m in provenance.trial_manifests(summary.experiment_dir)
            if m["trial_id"] == collapsed["trial_id"]] == [1]
    assert "trials: 2 of 2 — 1 finished, 0 early-stopped, 0 failed, 0 diverged, 1 collapsed" in run_summary_text(summary)
    assert_invariants(summary.experiment_dir)


def test_grid_whose_last_trial_to_end_diverges_completes(tmp_path, ray_with_faults):
    """The ordering that crashed whole runs: the grid's last trial to end is the diverged one, so telling Optuna
    FAIL makes GridSampler call study.stop() outside an objective (RuntimeError); the run must still settle."""
    _set_faults(ray_with_faults, nan_when_lr_at_least=0.3, nan_from_epoch=4, sleep_per_batch_when_lr_at_least=[0.3, 0.25])
    spec = tiny_spec(tmp_path, params={"lr": {"type": "categorical", "choices": [0.01, 0.5]}})
    summary = run_experiment(spec)
    assert summary.exit_code == 1
    assert (summary.counts["finished"], summary.counts["diverged"]) == (1, 1)
    trials = {trial.state.name: trial for trial in optuna_trials(summary.experiment_dir)}
    assert set(trials) == {"COMPLETE", "FAIL"}
    assert trials["FAIL"].datetime_complete > trials["COMPLETE"].datetime_complete  # the diverged trial ended last
    diverged = summary.trials[summary.trials["stop_reason"] == "diverged"].iloc[0]
    assert diverged["epochs_run"] == 4
    assert_invariants(summary.experiment_dir)


def test_an_ablation_whose_only_trial_diverges_ends_and_reruns(tmp_path, ray_with_faults):
    """The audit's reproduction: a one-point grid whose trial diverges used to crash every run and rerun."""
    _set_faults(ray_with_faults)
    spec = tiny_spec(tmp_path, params={"lr": {"type": "categorical", "choices": [1.0e30]}})
    for _ in range(2):  # the run, then a rerun of the finished experiment
        summary = run_experiment(spec)
        assert summary.exit_code == 1 and summary.counts["diverged"] == 1 and not summary.interrupted
        assert summary.study_path is not None and optuna_states(summary.experiment_dir) == ["FAIL"]
        assert_invariants(summary.experiment_dir)
    # the rerun had nothing to do, and left the experiment as it was (its report would not change)
    assert "resumed_with" not in provenance.load(summary.experiment_dir)


def test_trials_a_killed_driver_started_after_rays_last_snapshot_are_set_aside(tmp_path, ray_with_faults, capsys):
    """Ray's snapshot of a run lags its trials: a driver killed in between leaves records of trials that no rerun can
    resume, and the search runs others in their place. They move to lost/, so the experiment keeps num_samples
    trials (test_interruptions kills a real driver; here the lost trial is made by hand)."""
    _set_faults(ray_with_faults)
    spec = tiny_spec(tmp_path, fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 2, "batch_size": 128, "k": [10]})
    summary = run_experiment(spec)
    records_dir = Path(summary.experiment_dir) / "records"
    shutil.copytree(next(records_dir.iterdir()), records_dir / "0a0a0a0a")
    rerun = run_experiment(spec)
    assert "1 trial(s) had started after Ray's last snapshot of the killed run (0a0a0a0a)" in capsys.readouterr().out
    assert len(rerun.trials) == 2 and rerun.counts["finished"] == 2 and "trials: 2 of 2" in run_summary_text(rerun)
    assert [p.name for p in (Path(summary.experiment_dir) / "lost").iterdir()] == ["trial_id=0a0a0a0a"]


@pytest.mark.parametrize("damage", ["experiment_state", "tuner.pkl"])
def test_rays_damaged_state_is_set_aside_and_the_rerun_starts_again_from_the_records(tmp_path, ray_with_faults, capsys,
                                                                                      damage):
    """A full disk or an interrupted copy leaves Ray's state cut short: the rerun keeps it in damaged/, tells a new
    search the trials the records show ended, and runs the rest (it crashed with a JSONDecodeError, or said
    --fresh, which deletes the records)."""
    _set_faults(ray_with_faults)
    spec = tiny_spec(tmp_path, fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 2, "batch_size": 128, "k": [10]})
    summary = run_experiment(spec)
    directory = Path(summary.experiment_dir)
    kept = next((directory / "records").iterdir())
    shutil.rmtree(next(p for p in (directory / "records").iterdir() if p != kept))  # one trial left to run
    state = next(directory.glob("experiment_state-*.json")) if damage == "experiment_state" else directory / "tuner.pkl"
    state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2] if damage == "experiment_state" else b"")
    before = pd.read_parquet(kept / "trial.parquet")
    rerun = run_experiment(spec)
    out = capsys.readouterr().out
    assert f"Ray's saved state of this experiment cannot be read ({state.name}:" in out, out
    assert rerun.exit_code == 0 and rerun.counts["finished"] == 2
    assert_invariants(directory)
    pd.testing.assert_frame_equal(pd.read_parquet(kept / "trial.parquet"), before)  # the ended trial as it was
    assert (next((directory / "damaged").iterdir()) / state.name).is_file()  # kept, not deleted
    assert run_experiment(spec).counts["finished"] == 2  # and the next rerun has nothing to do


def test_a_resume_refuses_rays_state_that_others_could_have_rewritten(tmp_path, ray_with_faults):
    """A resume unpickles tuner.pkl and the searcher's state: a pickle others can write runs their code as the user."""
    _set_faults(ray_with_faults)
    spec = tiny_spec(tmp_path, fixed={"epochs": 2})
    directory = Path(run_experiment(spec).experiment_dir)
    (directory / "tuner.pkl").chmod(0o666)
    with pytest.raises(ExperimentError) as refused:
        run_experiment(spec)
    assert str(refused.value).startswith(f"{directory / 'tuner.pkl'} (writable by everyone, mode 0666): a resume "
                                         "unpickles Ray's saved state")
    assert f"`chmod -R go-w {directory}`" in str(refused.value)
    (directory / "tuner.pkl").chmod(0o644)
    assert run_experiment(spec).exit_code == 0


def test_a_run_on_changed_data_is_refused_naming_the_file(tmp_path, ray_with_faults):
    """A line appended to the dataset between two runs made another split, and the experiment went on with epochs on
    two splits. Growing (or resuming) an experiment on other data is refused; --fresh starts over."""
    _set_faults(ray_with_faults)
    data_file = tmp_path / "log.csv"
    data_file.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(30) for i in range(u % 7, u % 7 + 8)))

    def spec(trials):
        return tiny_spec(tmp_path, dataset={"name": "interactions", "path": str(data_file), "synthetic": None},
                         fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 2, "batch_size": 128, "k": [10]},
                         params={"lr": {"type": "float", "low": 0.01, "high": 0.1}},
                         search={"sampler": "tpe", "num_samples": trials})

    directory = Path(run_experiment(spec(2)).experiment_dir)
    with data_file.open("a") as f:
        f.write("99,3\n")
    snapshot = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    with pytest.raises(ExperimentError, match=rf"was run on other data: {data_file} changed \(split \w+ became \w+\); put the"):
        run_experiment(spec(3))
    assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == snapshot
    assert run_experiment(spec(3), fresh=True).exit_code == 0


def test_a_damaged_record_file_is_never_a_reason_to_rewrite_history(tmp_path, ray_with_faults):
    """A truncated trial.parquet of a finished trial turned it into `failed` on the rerun (exit 0 -> 1) and it left
    optuna.db: the run is refused in one line naming the file, and nothing in the experiment changes."""
    _set_faults(ray_with_faults)
    spec = tiny_spec(tmp_path, fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 2, "batch_size": 128, "k": [10]})
    directory = Path(run_experiment(spec).experiment_dir)
    damaged = next((directory / "records").iterdir()) / "trial.parquet"
    damaged.write_bytes(damaged.read_bytes()[:300])
    snapshot = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    with pytest.raises(DataError, match=r"1 record file\(s\) cannot be read \(records/\w+/trial.parquet\)"), \
            pytest.warns(UserWarning, match=r"trial.parquet: skipped, not a readable parquet file"):
        run_experiment(spec)
    assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == snapshot


def test_trials_that_fail_for_good_are_counted_and_their_errors_shown(tmp_path, ray_with_faults):
    """Failing at epoch 1, before a single record: the run's summary and the report agree on 2 failed trials
    and show each trial's error."""
    from tuner.analysis.report import write_report
    from tuner.console import run_summary_text
    from tuner.errors import NoResultsError

    _set_faults(ray_with_faults, raise_once_at_epoch=1)
    summary = run_experiment(tiny_spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2}))
    assert summary.exit_code == 1 and summary.counts["failed"] == 2 and summary.trials.empty
    text = run_summary_text(summary)
    assert text.count("RuntimeError: injected fault at epoch 1") == 2 and "trials: 2 of 2 — 0 finished" in text
    with pytest.raises(NoResultsError):
        write_report(Experiment.open(summary.experiment_dir))
    report = (Path(summary.experiment_dir) / "report" / "report.md").read_text()
    assert "Trials: 2 — 0 finished, 0 early-stopped, 2 failed" in report
    assert report.count("RuntimeError: injected fault at epoch 1 |") == 2
    # optuna.db is written all the same (it had none), and agrees with the records: no trial got as far as one
    study = Path(summary.experiment_dir) / "optuna.db"
    assert_invariants(summary.experiment_dir)
    written = study.stat().st_mtime_ns, study.read_bytes()
    assert run_experiment(tiny_spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2})).exit_code == 1
    assert (study.stat().st_mtime_ns, study.read_bytes()) == written  # a rerun that runs nothing changes nothing


def test_resume_errored_leaves_one_end_per_trial(tmp_path, ray_with_faults):
    """The failed attempt's `ended, failed` row (at its last checkpoint's epoch) stood beside the resumed attempt's
    `ended, finished`: `tuner records` showed 3 ended rows for 2 trials."""
    _set_faults(ray_with_faults, raise_once_at_epoch=3)
    spec = tiny_spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2})
    assert run_experiment(spec).counts["failed"] == 2
    resumed = run_experiment(spec, resume_errored=True)
    assert resumed.counts["finished"] == 2 and resumed.exit_code == 0
    records = assert_invariants(resumed.experiment_dir).records
    assert (records["status"] == "ended").sum() == 2


def test_a_trial_that_fails_the_same_way_twice_is_not_retried_again(tmp_path, ray_with_faults):
    """The same exception at the same epoch on the retry: a third attempt would only repeat it (max_failures 5)."""
    _set_faults(ray_with_faults, raise_always_at_epoch=3)
    summary = run_experiment(tiny_spec(tmp_path, failure={"max_failures": 5, "checkpoint_every": 2}))
    assert summary.exit_code == 1 and summary.counts["failed"] == 2
    attempts = sorted(m["attempt"] for m in provenance.trial_manifests(summary.experiment_dir))
    assert attempts == [1, 1, 2, 2]
    assert all("ValueError: deterministic fault at epoch 3" in error for error in summary.errors.values())
    assert_invariants(summary.experiment_dir)


def test_restart_errored_runs_the_failed_trials_again_and_reruns_do_not_crash(tmp_path, ray_with_faults):
    """Ray restarts an errored trial under a new id its searcher never suggested (OptunaSearch raised KeyError on
    its first result, and every later rerun crashed the same way)."""
    _set_faults(ray_with_faults, raise_once_at_epoch=2)
    spec = tiny_spec(tmp_path, failure={"max_failures": 0, "checkpoint_every": 2})
    assert run_experiment(spec).counts["failed"] == 2
    _set_faults(ray_with_faults)
    restarted = run_experiment(spec, restart_errored=True)
    assert restarted.counts == {"finished": 2, "early_stopped": 0, "failed": 0, "diverged": 0, "collapsed": 0,
                                "running": 0}
    assert restarted.errors == {} and len(restarted.trials) == 2
    first_attempts = list((Path(restarted.experiment_dir) / "restarted").glob("trial_id=*"))
    assert len(first_attempts) == 2 and all((a / "records").is_dir() for a in first_attempts)
    assert run_experiment(spec).counts["finished"] == 2  # and a plain rerun settles as well


def test_baselines_are_computed_alongside_the_trials(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    # learning rates too small to learn anything in 6 epochs: the baselines beat every trial, and the summary says so
    summary = run_experiment(tiny_spec(tmp_path, baselines=["mostpop", "mf"], seeds=[0, 1],
                                       params={"lr": {"type": "categorical", "choices": [1e-7, 2e-7]}}))
    rows = baselines_file.load(summary.experiment_dir)
    assert sorted(zip(rows["baseline"], rows["seed"].fillna(-1))) == [("mf (rank 8)", 0), ("mf (rank 8)", 1), ("mostpop", -1)]
    assert rows["test/recall@10"].between(0, 1).all()
    warning = next(line for line in run_summary_text(summary).splitlines() if line.startswith("warning:"))
    assert warning.startswith("warning: no trial beats the baseline(s) mf (rank 8) (") and "mostpop (" in warning


def test_concurrent_trials_run_at_the_same_time(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults, meet_at_first_epoch=2)  # trials run one after the other would never meet, and fail
    summary = run_experiment(tiny_spec(tmp_path, failure={"max_failures": 0}))  # 2 trials at once on 2 CPUs
    assert summary.exit_code == 0 and summary.counts["finished"] == 2


def test_asha_stops_trials_and_they_are_never_ranked_as_finished(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    spec = tiny_spec(
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
    assert_invariants(summary.experiment_dir)
    assert_live_study_is_the_export(summary.experiment_dir)  # stopped trials PRUNED, finished ones at their best
    assert sorted(optuna_states(summary.experiment_dir)) == sorted(
        {"finished": "COMPLETE", "early_stopped": "PRUNED"}[reason] for reason in summary.trials["stop_reason"])
    stopped = summary.trials[summary.trials["stop_reason"] == "early_stopped"]
    assert (stopped["epochs_run"] < 8).all()
    ranks = list(summary.trials["stop_reason"])
    assert ranks == sorted(ranks, key=lambda r: r != "finished")  # finished trials first, whatever their metric
    # every ended trial is compacted, the ones ASHA let run to the end included
    assert list(Path(summary.experiment_dir, "records").glob("*/epoch=*")) == []


def test_a_finished_search_grows_with_more_samples_and_keeps_what_it_learnt(tmp_path, ray_with_faults, capsys):
    """num_samples 3 -> 5: the same experiment and study, two trials more; the first three untouched."""
    _set_faults(ray_with_faults)
    search = {"sampler": "tpe", "num_samples": 3, "max_concurrent": 2}
    params = {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
    first = run_experiment(tiny_spec(tmp_path, params=params, search=search))
    before = first.experiment.trials.set_index("trial_id")[["param_lr", "val/recall@10"]]
    with pytest.raises(ExperimentError, match="can grow, not shrink"):
        run_experiment(tiny_spec(tmp_path, params=params, search={**search, "num_samples": 2}))
    capsys.readouterr()
    grown = run_experiment(tiny_spec(tmp_path, params=params, search={**search, "num_samples": 5}))
    assert "tiny, growing from 3 to 5 trials: 2 trials at once" in capsys.readouterr().out
    assert grown.exit_code == 0 and grown.counts["finished"] == 5 and len(grown.trials) == 5
    after = grown.experiment.trials.set_index("trial_id")[["param_lr", "val/recall@10"]]
    assert after.loc[before.index].equals(before)  # the first trials are as they were
    study = optuna_from_db(grown.experiment_dir)
    assert [t.user_attrs["trial_id"] for t in study.trials[:3]] == list(
        first.experiment.trials.sort_values(["trial_started", "trial_id"])["trial_id"])
    assert len(study.trials) == 5
    assert len(optuna_trials(grown.experiment_dir)) == 5  # the live searcher was told the first three
    assert "trials: 5 of 5" in run_summary_text(grown)
    # a rerun has nothing to do: the first three are not taken for trials a killed driver lost (Ray's snapshot of the
    # grown run does not hold them, the first run's does)
    rerun = run_experiment(tiny_spec(tmp_path, params=params, search={**search, "num_samples": 5}))
    assert len(rerun.trials) == 5 and not (Path(grown.experiment_dir) / "lost").exists()


def test_a_warm_started_search_runs_the_given_configurations_first(tmp_path, ray_with_faults):
    _set_faults(ray_with_faults)
    params = {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
    source = run_experiment(tiny_spec(tmp_path, name="source", params=params,
                                  search={"sampler": "random", "num_samples": 3, "max_concurrent": 2}))
    best_lr = source.experiment.best_trial()["param_lr"]
    warm = run_experiment(tiny_spec(tmp_path, name="warm", params=params, search={
        "sampler": "tpe", "num_samples": 2, "max_concurrent": 1, "warm_start": {"experiment": "source", "trials": 1}}))
    first = warm.experiment.trials.sort_values("trial_started").iloc[0]
    assert first["param_lr"] == pytest.approx(best_lr)


def test_an_mlflow_server_that_is_down_is_one_line_before_any_trial_starts(tmp_path, ray_with_faults):
    """Every trial's logger retried for minutes, then the run ended in a traceback."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SpecError, match=rf"^logging.mlflow: http://127.0.0.1:{port} cannot be reached \(.*refused"):
        run_experiment(tiny_spec(tmp_path, logging={"mlflow": f"http://127.0.0.1:{port}"}))
    assert not list((tmp_path / "runs").glob("tiny/records/*"))


def _tensorboard_steps(events_file: Path, tag_part: str) -> list[int]:
    """The steps of the scalars whose tag contains `tag_part` in a TensorBoard events file (TFRecord framing:
    length, its CRC, the Event protobuf, its CRC)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, offset, steps = events_file.read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        event = event_pb2.Event.FromString(data[offset + 12: offset + 12 + length])
        offset += 12 + length + 4
        steps += [event.step for value in event.summary.value if tag_part in value.tag]
    return steps


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # MLflow's own SQLAlchemy use
def test_mlflow_and_tensorboard_log_every_trial_against_its_epochs(tmp_path, ray_with_faults):
    """Evaluated every second epoch, the curves are at epochs 2, 4, 6 (they were at Tune's report count, 1, 2, 3)."""
    import mlflow

    _set_faults(ray_with_faults)
    summary = run_experiment(tiny_spec(tmp_path, logging={"mlflow": True}, fixed={"eval_every": 2}))
    mlflow.set_tracking_uri(f"sqlite:///{summary.experiment_dir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) == 2 and sorted(runs["params.lr"].astype(float)) == [0.01, 0.02]
    assert runs["metrics.val/recall_at_10"].notna().all()  # MLflow allows no '@' in names
    client = mlflow.MlflowClient()
    for run_id in runs["run_id"]:
        assert [m.step for m in client.get_metric_history(run_id, "val/recall_at_10")] == [2, 4, 6]
    for trial_id in summary.trials["trial_id"]:  # `tensorboard --logdir <experiment>` finds every trial
        events = list((Path(summary.experiment_dir) / trial_id).glob("events.out.tfevents.*"))
        assert events and _tensorboard_steps(events[0], "ray/tune/val/recall_10") == [2, 4, 6]  # TensorBoard: no "@"
    _mlflow_ui_shows(summary.experiment_dir, "tiny")


def _mlflow_ui_shows(experiment_dir: str, experiment: str) -> None:
    """docs/commands.md's `mlflow ui --backend-store-uri sqlite:///<experiment>/mlflow.db` serves its page and the runs."""
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                           f"sqlite:///{experiment_dir}/mlflow.db", "--port", str(port), "--workers", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, page = time.time() + 60, ""
        while time.time() < deadline and "<html" not in page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
        assert "<html" in page and "MLflow" in page, page[:300]
        listed = urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10")
        assert f'"name": "{experiment}"' in listed.read().decode()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.communicate(timeout=30)
