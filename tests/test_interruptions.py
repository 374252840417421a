"""`tuner run` as a user runs it, in a subprocess, ended every way a run ends before its trials have: killed (a crash
or a dead machine), Ctrl-C, and stopped with SIGTERM (a batch scheduler, `timeout`, a container runtime). The same
command run again picks up where the experiment stands, and the last rerun finishes it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import epochs_written, kill_tree
from tests.tuning_helpers import assert_invariants, assert_live_study_is_the_export, optuna_states, tiny_spec
from tuner.experiment import records as records_module

pytestmark = pytest.mark.slow

NUM_TRIALS = 12


def _tuner_run(spec_file) -> subprocess.Popen:
    env = {**os.environ, "TUNER_OFFLINE": "1"}
    env.pop("TUNER_TEST_FAULT_DIR", None)
    return subprocess.Popen([sys.executable, "-m", "tuner", "run", str(spec_file)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _epochs(experiment_dir) -> int:
    return sum(epochs_written(experiment_dir / "records").values())


def _wait_for_epochs(driver, experiment_dir, at_least: int) -> None:
    """Until the records hold `at_least` epochs; the driver must still be running then."""
    deadline = time.time() + 240
    while _epochs(experiment_dir) < at_least and driver.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert driver.poll() is None, f"the run ended before {at_least} epochs were written"


def _early_stopped(experiment_dir) -> set:
    records = records_module.load(str(experiment_dir))
    return set(records.loc[records["stop_reason"] == "early_stopped", "trial_id"]) if not records.empty else set()


@pytest.mark.filterwarnings("ignore:.*not a readable parquet file")  # polled while trials are being compacted
def test_a_run_killed_stopped_or_interrupted_resumes_each_time_and_finishes(tmp_path):
    spec = tiny_spec(
        tmp_path,
        params={"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
        search={"sampler": "tpe", "num_samples": NUM_TRIALS, "max_concurrent": 2},
        scheduler={"kind": "asha", "grace_period": 1, "reduction_factor": 2},
        dataset={"synthetic": {"num_users": 400, "num_items": 60, "interactions_per_user": 12}},  # long enough epochs
        fixed={"embedding_dim": 8, "num_layers": 1, "epochs": 30, "batch_size": 32, "k": [10], "eval_every": 1},
    )
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    experiment_dir = Path(spec.storage) / spec.name

    # 1. Killed between tuner.pkl and Ray's first snapshot of the trials. Tune would restore an experiment that runs
    #    one trial and stops, on every rerun ('trials: 1 of 8', exit 130, forever): the rerun must start over.
    driver = _tuner_run(spec_file)
    deadline = time.time() + 120
    while not (experiment_dir / "tuner.pkl").exists() and time.time() < deadline:
        time.sleep(0.01)
    kill_tree(driver)  # the driver, the Ray instance it started and its trials
    assert not list(experiment_dir.glob("experiment_state-*"))

    # 2. One run at a time: a second `tuner run` of the experiment is refused, in one line. Then Ctrl-C: exit 130.
    driver = _tuner_run(spec_file)
    _wait_for_epochs(driver, experiment_dir, at_least=1)
    second = subprocess.run([sys.executable, "-m", "tuner", "run", str(spec_file)], capture_output=True, text=True)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"experiment tiny is being run by pid {driver.pid}" in second.stderr
    _wait_for_epochs(driver, experiment_dir, at_least=3)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 130, output[-3000:]
    assert "interrupted: run the same command again to resume" in output
    assert "Tuner.restore" not in output  # Ray Tune's advice, which is not how a tuner user resumes

    # 3. Killed mid-run: the rerun resumed and got further. The trials a killed driver had started after Ray's last
    #    snapshot of the run are set aside (lost/) when the next run starts, and the search runs others instead.
    driver = _tuner_run(spec_file)
    _wait_for_epochs(driver, experiment_dir, at_least=_epochs(experiment_dir) + 3)
    kill_tree(driver)

    # 4. SIGTERM once ASHA has stopped a trial in this run: exit 143, no stack dump, and the stopped trial already
    #    says so in the records (it is not left to look unfinished until the run settles).
    stopped_before = _early_stopped(experiment_dir)
    driver = _tuner_run(spec_file)
    stopped: set = set()
    deadline = time.time() + 240
    while not stopped and driver.poll() is None and time.time() < deadline:
        stopped = _early_stopped(experiment_dir) - stopped_before
        time.sleep(0.1)
    assert stopped and driver.poll() is None
    driver.send_signal(signal.SIGTERM)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 143, output[-3000:]
    assert "interrupted: run the same command again to resume" in output
    assert "Traceback" not in output and "SIGTERM received" not in output  # no stack dump, Python's or Ray's
    interrupted = records_module.load(str(experiment_dir))
    stopped = _early_stopped(experiment_dir)

    # 5. The last rerun finishes: every trial has ended once, with one row per epoch, and the trials ASHA had
    #    stopped are as they were.
    driver = _tuner_run(spec_file)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]
    assert "resuming" in output and f"trials: {NUM_TRIALS} of {NUM_TRIALS}" in output, output[-3000:]
    finished = assert_invariants(experiment_dir)
    records, trials = finished.records, finished.trials
    assert len(trials) == NUM_TRIALS and set(trials["stop_reason"]) <= {"finished", "early_stopped"}
    states = optuna_states(str(experiment_dir))  # the searcher Ray saved agrees as well
    assert len(states) == NUM_TRIALS and "RUNNING" not in states
    assert_live_study_is_the_export(str(experiment_dir))  # resumed trials told each epoch once, at their best
    for trial_id in stopped:
        before, after = interrupted[interrupted["trial_id"] == trial_id], records[records["trial_id"] == trial_id]
        assert list(after["epoch"]) == list(before["epoch"]) and after["stop_reason"].iloc[-1] == "early_stopped"


def _rays_processes_in_group(group: int) -> list[str]:
    import psutil

    found = []
    for process in psutil.process_iter(["name", "status"]):
        try:
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process.info["name"])
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def test_the_run_after_a_killed_driver_stops_the_ray_processes_it_left(tmp_path):
    """SIGKILL of the driver alone leaves Ray's DashboardAgent and RuntimeEnvAgent running (they ignore SIGTERM) for
    over a minute; the next run of the experiment stops them."""
    spec = tiny_spec(tmp_path, fixed={"epochs": 500})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    experiment_dir = Path(spec.storage) / spec.name
    env = {**os.environ, "TUNER_OFFLINE": "1"}
    env.pop("TUNER_TEST_FAULT_DIR", None)
    command = [sys.executable, "-m", "tuner", "run", str(spec_file)]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # a shell's job: the driver leads its process group
    _wait_for_epochs(driver, experiment_dir, at_least=1)
    driver.kill()
    driver.wait()
    time.sleep(2)  # Ray's raylet and workers notice their driver is gone and end; its agents stay
    assert any(name.startswith("ray::") for name in _rays_processes_in_group(driver.pid))

    rerun = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_line = rerun.stdout.readline()
    kill_tree(rerun)
    assert first_line.startswith(f"stopped 2 process(es) of Ray's that the killed run (pid {driver.pid}) left"), first_line
    assert _rays_processes_in_group(driver.pid) == []
