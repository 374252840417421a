"""One `tuner run` at a time per experiment; a lock whose holder is gone is taken over."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tuner.errors import ExperimentError
from tuner.experiment.lock import STALE_AFTER, ExperimentLock


def _holder(tmp_path, **fields):
    record = {"host": socket.gethostname(), "pid": 1, "since": time.time(), "seen": time.time(), "token": "other"}
    (tmp_path / "exp.lock").write_text(json.dumps({**record, **fields}))


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    with ExperimentLock(str(tmp_path), "exp"):
        assert (tmp_path / "exp.lock").is_file()
        with pytest.raises(ExperimentError, match=r"exp.lock: experiment exp is being run by pid \d+ on .* since .*; wait"):
            ExperimentLock(str(tmp_path), "exp").__enter__()
    assert not (tmp_path / "exp.lock").exists()  # released
    with ExperimentLock(str(tmp_path), "exp") as lock:
        assert lock.taken_over is None  # a released lock is simply taken, nothing taken over


def test_a_live_process_on_this_host_holds_it(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _holder(tmp_path, pid=sleeper.pid)
        with pytest.raises(ExperimentError, match=f"being run by pid {sleeper.pid}"):
            ExperimentLock(str(tmp_path), "exp").__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    with ExperimentLock(str(tmp_path), "exp") as lock:  # its process is gone: a crashed run's lock is taken over at once
        assert json.loads((tmp_path / "exp.lock").read_text())["token"] != "other"
        assert lock.taken_over["pid"] == sleeper.pid  # what the dead run left is the new holder's to clean up


def test_what_a_run_notes_in_its_lock_is_there_for_the_run_that_takes_it_over(tmp_path):
    with ExperimentLock(str(tmp_path), "exp") as lock:
        assert lock.taken_over is None
        lock.note(ray_group=1234)
        record = json.loads((tmp_path / "exp.lock").read_text())
        assert record["ray_group"] == 1234 and record["pid"] == os.getpid()
    _holder(tmp_path, ray_group=1234, pid=99999999)  # as a killed run leaves it
    with ExperimentLock(str(tmp_path), "exp") as taking_over:
        assert taking_over.taken_over["ray_group"] == 1234


def test_another_hosts_lock_holds_until_it_goes_stale(tmp_path):
    _holder(tmp_path, host="elsewhere", pid=4242)
    with pytest.raises(ExperimentError, match="being run by pid 4242 on elsewhere"):
        ExperimentLock(str(tmp_path), "exp").__enter__()
    _holder(tmp_path, host="elsewhere", pid=4242, seen=time.time() - STALE_AFTER - 1)
    with ExperimentLock(str(tmp_path), "exp") as lock:
        assert json.loads((tmp_path / "exp.lock").read_text())["pid"] == os.getpid()
        assert lock.taken_over is None  # another host's leftover processes are not this run's to stop


def test_a_half_written_lock_holds_nothing(tmp_path):
    (tmp_path / "exp.lock").write_text('{"host": "')
    with ExperimentLock(str(tmp_path), "exp") as lock:
        assert json.loads((tmp_path / "exp.lock").read_text())["pid"] == os.getpid()  # rewritten whole, ours
        assert lock.taken_over is None  # nothing of a dead run's to clean up: its note could not be read
    assert not (tmp_path / "exp.lock").exists()
