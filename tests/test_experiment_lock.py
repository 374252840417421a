"""One `tuner run` at a time per experiment; a lock whose holder is gone is taken over."""

import json
import socket
import subprocess
import sys
import time

import pytest

from tuner.errors import SpecError
from tuner.experiment.lock import STALE_AFTER, ExperimentLock


def _holder(tmp_path, **fields):
    record = {"host": socket.gethostname(), "pid": 1, "since": time.time(), "seen": time.time(), "token": "other"}
    (tmp_path / "exp.lock").write_text(json.dumps({**record, **fields}))


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    with ExperimentLock(str(tmp_path), "exp"):
        assert (tmp_path / "exp.lock").is_file()
        with pytest.raises(SpecError, match=r"exp.lock: experiment exp is being run by pid \d+ on .* since .*; wait"):
            ExperimentLock(str(tmp_path), "exp").__enter__()
    assert not (tmp_path / "exp.lock").exists()  # released
    with ExperimentLock(str(tmp_path), "exp"):
        pass


def test_a_live_process_on_this_host_holds_it(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _holder(tmp_path, pid=sleeper.pid)
        with pytest.raises(SpecError, match=f"being run by pid {sleeper.pid}"):
            ExperimentLock(str(tmp_path), "exp").__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    with ExperimentLock(str(tmp_path), "exp"):  # its process is gone: a crashed run's lock is taken over at once
        assert json.loads((tmp_path / "exp.lock").read_text())["token"] != "other"


def test_another_hosts_lock_holds_until_it_goes_stale(tmp_path):
    _holder(tmp_path, host="elsewhere", pid=4242)
    with pytest.raises(SpecError, match="being run by pid 4242 on elsewhere"):
        ExperimentLock(str(tmp_path), "exp").__enter__()
    _holder(tmp_path, host="elsewhere", pid=4242, seen=time.time() - STALE_AFTER - 1)
    with ExperimentLock(str(tmp_path), "exp"):
        pass


def test_a_half_written_lock_holds_nothing(tmp_path):
    (tmp_path / "exp.lock").write_text('{"host": "')
    with ExperimentLock(str(tmp_path), "exp"):
        pass
