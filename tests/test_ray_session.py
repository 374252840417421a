"""The local Ray instance `tuner run` starts (tuner.tuning.ray_session)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

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


@pytest.mark.slow
def test_a_local_ray_prestarts_no_workers_that_trials_could_not_use():
    """Ray prestarts an idle worker per CPU for a new driver, but gives Tune's trial actors (they carry a runtime
    environment) new workers: on a small machine the unused ones only slowed the start-up."""
    out = subprocess.run([sys.executable, "-c", _COUNT_IDLE_WORKERS], capture_output=True, text=True, check=True, cwd=REPO,
                         env={k: v for k, v in os.environ.items() if k != "RAY_prestart_worker_first_driver"})
    assert out.stdout.split() == ["0", "1"]


def test_rays_token_is_made_readable_by_its_owner_only_and_a_loose_one_is_tightened_once(tmp_path, monkeypatch):
    """The token guards the local instance's Jobs API (which runs code): Ray would write it readable by anyone."""
    from tuner.tuning.ray_session import keep_token_private

    token = tmp_path / "ray" / "auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert "readable by you only (0600)" in keep_token_private()
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
    assert keep_token_private() is None  # said once

    token.chmod(0o644)
    assert keep_token_private() == (f"note: {token}, the token guarding Ray's Jobs API on this machine, was readable "
                                    "by others (0644); it is now readable by you only (0600)")
    assert token.stat().st_mode & 0o777 == 0o600

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    token.unlink()
    assert keep_token_private() is None and not token.exists()
