"""`tuner run` on storage that fills up or turns read-only mid-run, on a small file system the test mounts (root
only: skipped elsewhere). The run stops in one line naming the storage and what to do, exit 1; once there is room
(or it is writable again) the same command finishes the experiment, with the whole fault invariant kept."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.tuning_helpers import assert_invariants, tiny_spec

pytestmark = pytest.mark.slow


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_storage(tmp_path):
    """A 1 MiB tmpfs: a few trials' records fill it."""
    storage = tmp_path / "storage"
    storage.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(storage)):
        pytest.skip("mounting a small file system needs root")
    yield storage
    subprocess.run(["umount", "-R", "--lazy", str(storage)], capture_output=True)  # Ray may still hold a file there


def _spec_file(tmp_path, storage) -> Path:
    spec = tiny_spec(
        tmp_path, name="full", model="mf", storage=str(storage),
        params={"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
        search={"sampler": "tpe", "num_samples": 6, "max_concurrent": 2},
        fixed={"num_layers": None, "epochs": 20},
    )
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    return spec_file


def _command(spec_file) -> list[str]:
    return [sys.executable, "-m", "tuner", "run", str(spec_file)]


def _env() -> dict:
    env = {**os.environ, "TUNER_OFFLINE": "1"}
    env.pop("TUNER_TEST_FAULT_DIR", None)
    return env


def _tuner_run(spec_file) -> subprocess.CompletedProcess:
    return subprocess.run(_command(spec_file), env=_env(), capture_output=True, text=True, timeout=600)


def test_a_full_disk_stops_the_run_in_one_line_and_the_rerun_with_room_finishes_it(tmp_path, small_storage):
    spec_file = _spec_file(tmp_path, small_storage)
    full = _tuner_run(spec_file)
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-3000:]
    error = full.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {small_storage}: no space left on device (trial "), error
    assert "free space, then run the same command again" in error and "Aborted" not in full.stderr

    assert _mount("-o", "remount,size=64m", str(small_storage))
    rerun = _tuner_run(spec_file)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    assert "trials: 6 of 6" in rerun.stdout
    assert_invariants(small_storage / "full")


def test_storage_turned_read_only_stops_the_run_in_one_line_and_the_rerun_finishes_it(tmp_path, small_storage):
    assert _mount("-o", "remount,size=64m", str(small_storage))
    spec_file = _spec_file(tmp_path, small_storage)
    experiment_dir = small_storage / "full"
    driver = subprocess.Popen(_command(spec_file), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while len(list(experiment_dir.glob("records/*/epoch=*.parquet"))) < 5 and time.time() < deadline:
        time.sleep(0.1)
    # the records folder turns read-only under the running trials: a read-only bind mount over it (a remount of the
    # whole tmpfs, or of the experiment folder, is refused while files are open for writing there, and the driver
    # keeps each trial's TensorBoard file open; a record file is open for a moment, so a refusal is tried again)
    records = experiment_dir / "records"
    assert _mount("--bind", str(records), str(records))
    deadline = time.time() + 30
    while not _mount("-o", "remount,bind,ro", str(records)):
        assert time.time() < deadline, "the records folder stayed busy"
        time.sleep(0.05)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 1, stdout[-2000:] + stderr[-3000:]
    error = stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {small_storage}: read-only file system (trial "), error
    assert "make it writable, then run the same command again" in error

    subprocess.run(["umount", str(records)], check=True)
    rerun = _tuner_run(spec_file)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    assert "trials: 6 of 6" in rerun.stdout
    assert_invariants(experiment_dir)
