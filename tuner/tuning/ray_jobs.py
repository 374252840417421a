"""`tuner submit` and `tuner jobs`: run a spec on a Ray cluster through the Ray Jobs API.

The Jobs API runs arbitrary code for whoever reaches it, so: the default address is the loopback port that
`ray dashboard cluster.yaml` forwards; a plain-http address that is not loopback is refused unless token
authentication is configured (RAY_AUTH_MODE=token and a token in RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token or
RAY_AUTH_TOKEN) or --allow-insecure is given; the token is sent only as Ray's own Authorization header — it is
never printed, nor put in the job's metadata, entrypoint or environment; every entrypoint argument is
shell-quoted (the Jobs API runs the entrypoint through a shell).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import tuner
from tuner.errors import (
    AuthenticationRefused,
    ClusterError,
    ExperimentError,
    UsageError,
    one_line,
)
from tuner.recsys.models import ModelSource, locate
from tuner.recsys.models.registry import shippable_files
from tuner.spec_loader import load_spec
from tuner.tuning.package_versions import package_versions
from tuner.vocabulary import SUBMITTED_WITH_ENV

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
SPEC_IN_JOB = "spec.yaml"


AGENT_WAIT_S = 60.0  # how long `submit` retries while the cluster says its job agent is not up yet
AGENT_RETRY_S = 2.0


def is_loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_auth_configured() -> bool:
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return False
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    candidates = [Path(path)] if path else [Path.home() / ".ray" / "auth_token"]
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or any(p.is_file() and p.stat().st_size > 0 for p in candidates)


def check_address(address: str, allow_insecure: bool = False) -> str:
    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--address: expected http(s)://host:port, got {address!r}")
    if parsed.scheme == "http" and not is_loopback(parsed.hostname) and not token_auth_configured():
        if not allow_insecure:
            raise UsageError(
                f"--address: {address} is plain http to a non-loopback host and token authentication is not "
                "configured; reach the cluster through `ray dashboard cluster.yaml` (http://127.0.0.1:8265), or set "
                "RAY_AUTH_MODE=token with the cluster's token, or pass --allow-insecure"
            )
        print(f"warning: --allow-insecure: talking to {address} over plain http without authentication; anyone who "
              "reaches that address can run code on the cluster", file=sys.stderr)
    return address


def client(address: str, allow_insecure: bool = False):
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    check_address(address, allow_insecure)
    try:
        return JobSubmissionClient(address)
    except AuthenticationError as exc:  # the caller's credentials: bad input (exit 2)
        raise AuthenticationRefused(f"{address}: {one_line(exc)}") from None
    except ConnectionError as exc:  # nothing answers there: unreachable, try again later (exit 1)
        raise ClusterError(f"{address}: {one_line(exc)} Is the cluster up and its dashboard forwarded here "
                           "(`ray dashboard cluster.yaml`), or is it at another --address?") from None
    except Exception as exc:  # connection refused, version mismatch: unreachable or failing, try again later (exit 1)
        raise ClusterError(f"{address}: {one_line(exc)}") from None


def stage_job(spec_path: Path, folder: Path, model: ModelSource) -> None:
    """The job's working directory: this tuner package (so the cluster runs the submitter's code), the spec, and the
    spec's model when it is an import path found in a folder here (its top-level module or package): Ray puts the
    working directory on every worker's sys.path, so a node that never saw the file imports it. A registered model
    comes from its installed package, which the nodes must have (as they have tuner: cluster.yaml's setup)."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(tuner.__file__).parent, folder / "tuner", ignore=ignore)
    shutil.copyfile(spec_path, folder / SPEC_IN_JOB)
    shipped = shippable_files(model)
    if shipped is not None and shipped.name != "tuner":
        if shipped.is_dir():
            shutil.copytree(shipped, folder / shipped.name, ignore=ignore)
        else:
            shutil.copyfile(shipped, folder / shipped.name)


def job_runtime_env(runtime_env: dict, env: dict[str, str]) -> dict:
    """The user's runtime environment with `env` added to its env_vars (a value given both ways: `env` wins)."""
    if "working_dir" in runtime_env:
        raise UsageError("--runtime-env: working_dir is tuner's own (this package and the spec); ship more code with "
                        "py_modules")
    env_vars = runtime_env.get("env_vars") or {}
    if not isinstance(env_vars, dict) or not all(isinstance(v, str) for v in env_vars.values()):
        raise UsageError(f"--runtime-env: env_vars: expected a mapping of names to strings, got {env_vars!r}")
    return {**runtime_env, "env_vars": {**env_vars, **env, SUBMITTED_WITH_ENV: json.dumps(package_versions())}}


def entrypoint(storage: str | None, overrides: list[str], extra: list[str], data_dir: str | None = None) -> str:
    words = ["python", "-m", "tuner", "run", SPEC_IN_JOB]
    if storage:
        words += ["--storage", storage]
    if data_dir:
        words += ["--data-dir", data_dir]
    for override in overrides:
        words += ["--set", override]
    words += extra
    return " ".join(shlex.quote(word) for word in words)


def submit(
    spec_path: Path,
    address: str = DEFAULT_ADDRESS,
    storage: str | None = None,
    submission_id: str | None = None,
    overrides: list[str] | None = None,
    extra: list[str] | None = None,
    allow_insecure: bool = False,
    data_dir: str | None = None,
    env: dict[str, str] | None = None,
    runtime_env: dict | None = None,
) -> str:
    """`data_dir`: where the job's node finds (or downloads) the datasets (`tuner run --data-dir`); `env`:
    environment variables for the job and its trials; `runtime_env`: Ray's runtime environment for them (pip,
    conda, py_modules, env_vars, ...) — its working_dir is tuner's own (this package and the spec)."""
    overrides = list(overrides or [])
    spec = load_spec(spec_path, overrides)  # refuse a bad spec here, not on the cluster
    job_env = job_runtime_env(runtime_env or {}, env or {})
    if submission_id is not None:
        check_job_id(submission_id, "--submission-id")
    jobs = client(address, allow_insecure)
    if submission_id is not None:
        try:
            jobs.get_job_info(submission_id)
        except Exception:
            pass
        else:
            raise UsageError(f"--submission-id: {submission_id!r} was already used on {address}; choose another id")
    where = storage or spec.storage
    running = running_job(jobs, spec.name, where)
    if running is not None:
        raise ExperimentError(
            f"{spec.name}: job {running} on {address} is running this experiment (storage {where}); wait for it to "
            f"end or `tuner jobs stop {running}`"
        )
    with tempfile.TemporaryDirectory() as folder, without_rays_info_lines():
        stage_job(spec_path, Path(folder), locate(spec.model, spec.model_folder))
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                return jobs.submit_job(
                    entrypoint=entrypoint(storage, overrides, extra or [], data_dir),
                    submission_id=submission_id,
                    runtime_env={**job_env, "working_dir": folder},
                    metadata={"tuner_experiment": spec.name, "tuner_storage": where},
                )
            except Exception as exc:
                message = one_line(exc)
                if "already exists" in message:
                    raise UsageError(
                        f"--submission-id: {submission_id!r} was already used on {address}; choose another id") from None
                # a cluster that has just started answers before its job agent is up: Ray says to try again later
                if "try again later" in message and time.monotonic() < deadline:
                    time.sleep(AGENT_RETRY_S)
                    continue
                raise ClusterError(f"{address}: submitting the job failed: {message}") from None


@contextlib.contextmanager
def without_rays_info_lines() -> Iterator[None]:
    """Ray's Jobs client says at INFO what it does (uploading the working directory, opening and closing the log
    stream): `tuner submit` prints the job id and, with --wait, the job's own log; warnings and errors still show.
    Ray sets its loggers' levels itself, so INFO is disabled for the block, whichever logger says it."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def running_job(jobs, experiment: str, storage: str) -> str | None:
    """The id of a pending or running job of this experiment in this storage, if any (one run at a time; the
    experiment's lock file refuses a second run too, but only once that job has started)."""
    try:
        listed = jobs.list_jobs()
    except Exception as exc:
        raise ClusterError(f"listing the cluster's jobs failed: {one_line(exc)}") from None
    for job in listed:
        metadata = job.metadata or {}
        same = metadata.get("tuner_experiment") == experiment and metadata.get("tuner_storage", storage) == storage
        if same and str(job.status) in ("PENDING", "RUNNING"):
            return job.submission_id or job.job_id
    return None


def follow_logs(jobs, job_id: str) -> Iterator[str]:
    """The job's log as it is written, until the job ends."""
    stream = jobs.tail_job_logs(job_id)
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(stream.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # Ray's own: raysubmit_<letters>, or hex


def check_job_id(job_id: str, what: str = "job") -> None:
    """A job id goes into the URL of the cluster's Jobs API (/api/jobs/<id>): '../' or '?' would reach another
    endpoint than the one asked for."""
    if not _JOB_ID.match(job_id):
        raise UsageError(f"{what}: {job_id!r} is not a job id; expected letters, digits, '.', '_' and '-' (`tuner jobs "
                        "list` shows the cluster's jobs)")


def job_info(jobs, job_id: str):
    try:
        return jobs.get_job_info(job_id)
    except Exception as exc:
        raise ClusterError(f"job {job_id}: {one_line(exc)}") from None


def exit_code(jobs, job_id: str) -> int:
    """The job's own exit code (tuner run's: 0, 1, 2 or 130); 1 when the job failed without one."""
    info = jobs.get_job_info(job_id)
    code = getattr(info, "driver_exit_code", None)
    if code is not None:
        return int(code)
    return {"SUCCEEDED": 0, "STOPPED": 130}.get(str(info.status), 1)
