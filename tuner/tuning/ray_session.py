"""The Ray instance a run uses: started (or joined) once, measured for `resources: auto`, and shut down in the
background while the driver settles the run. With search.py and trainable.py, the only code that imports Ray."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import ray

from tuner.tuning.resources import Cluster

_stopping: threading.Thread | None = None
_ray_group: int | None = None  # the process group of the local instance's processes, when the driver leads it


def start() -> bool:
    """The cluster at $RAY_ADDRESS when it is set (as inside a Ray job), else a new embedded local instance —
    never a cluster that some earlier `ray start` on this machine left behind.

    Ray's processes are bound to the thread that starts them (they die with it): call this from the main thread.
    Returns False when Ray was running already (in this process): then whoever started it stops it.

    ray.init installs a native SIGTERM handler that prints a stack dump and kills the driver at once; a Python
    handler installed before (`tuner run` stops like Ctrl-C on SIGTERM) is put back."""
    wait_stopped()
    if ray.is_initialized():
        return False
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    address = os.environ.get("RAY_ADDRESS")
    if not address and (note := keep_token_private()):
        print(note, flush=True)
    with (contextlib.nullcontext() if address else _children_in_a_process_group_of_their_own(), _no_idle_workers(),
          contextlib.nullcontext() if address else _no_token_notice()):
        # workers' own output (Ray's checkpoint notices, library warnings) stays in Ray's session logs, not the console
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if callable(sigterm_handler):
        signal.signal(signal.SIGTERM, sigterm_handler)
    return True


def keep_token_private() -> str | None:
    """The token of a local Ray (the file $RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token) lets whoever reads it use the
    instance's Jobs API, which runs code: Ray writes it as the umask leaves files (0644, readable by anyone on the
    machine). Made here first, readable by its owner only, as Ray makes it (256 random bits, hex); one that others can
    read is tightened to 0600. Returns the one note to print when either was done (None otherwise, or when
    authentication is off or the token comes from $RAY_AUTH_TOKEN)."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token" or os.environ.get("RAY_AUTH_TOKEN"):
        return None
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as token:
                token.write(secrets.token_hex(32))
            return f"note: made {path}, the token guarding Ray's Jobs API on this machine, readable by you only (0600)"
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            return (f"note: {path}, the token guarding Ray's Jobs API on this machine, was readable by others "
                    f"({mode:04o}); it is now readable by you only (0600)")
    except OSError as exc:  # someone else's file, a read-only home: Ray reports what it cannot use
        return f"note: {path}: could not keep Ray's token private ({exc.strerror or exc})"
    return None


def _no_token_notice():
    """A new local Ray turns token authentication on, and says so in a warning line on every run ("Set
    RAY_AUTH_MODE=disabled to opt out"): not news from the instance tuner starts for itself, so that line is left
    out (authentication stays on; RAY_AUTH_MODE set by the user is respected and Ray then says nothing)."""
    return without_log_lines("ray._private.authentication.authentication_token_setup",
                             "Token authentication is enabled for this Ray cluster")


@contextlib.contextmanager
def without_log_lines(logger_name: str, containing: str):
    """While the block runs, the lines of Ray's logger `logger_name` that contain `containing` are left out."""
    logger = logging.getLogger(logger_name)
    line_filter = _Without(containing)
    logger.addFilter(line_filter)
    try:
        yield
    finally:
        logger.removeFilter(line_filter)


class _Without(logging.Filter):
    def __init__(self, containing: str):
        super().__init__()
        self.containing = containing

    def filter(self, record: logging.LogRecord) -> bool:
        return self.containing not in record.getMessage()


@contextlib.contextmanager
def _no_idle_workers():
    """A new local Ray prestarts one idle worker per CPU when the driver connects, but Tune's trial actors carry a
    runtime environment (Tune sets an environment variable in it) and Ray gives such actors new workers, never
    prestarted ones: the prestarted workers only take CPU from the start-up (on 2 cores the first epoch came
    0.8 s later) and are killed unused. So this instance starts none (Ray's documented RAY_<setting> environment
    variables configure the processes ray.init starts; one the user set wins)."""
    setting = "RAY_prestart_worker_first_driver"
    if setting in os.environ:
        yield
        return
    os.environ[setting] = "0"
    try:
        yield
    finally:
        del os.environ[setting]


@contextlib.contextmanager
def _children_in_a_process_group_of_their_own():
    """`timeout` and shell scripts signal a whole process group: SIGTERM would kill Ray's raylet and GCS under a
    running experiment (the driver then waits a minute for them before it can exit). So while Ray starts its
    processes the driver leads a process group of its own, which they inherit, and then it goes back to its group.
    Done only where no terminal's Ctrl-C depends on the driver's group (not in the terminal's foreground group),
    and not when the driver leads its group already (a shell's job: there it stays put)."""
    global _ray_group
    group = os.getpgrp()
    _ray_group = None
    if sys.platform == "win32" or group == os.getpid() or _in_terminal_foreground(group):
        _ray_group = group if group == os.getpid() else None
        yield
        return
    os.setpgid(0, 0)
    _ray_group = os.getpid()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # the old group has no member left: stay in ours
            os.setpgid(0, group)


def process_group() -> int | None:
    """The process group of the local Ray instance this driver started, when the driver leads it (its pid): the
    experiment's lock records it, so that a run taking over from a killed driver can stop what Ray left there."""
    return _ray_group if ray.is_initialized() else None


_RAY_PROCESS_NAMES = ("ray::", "raylet", "gcs_server")


def stop_leftovers(group: int) -> int:
    """Kill the processes of Ray's that a killed driver's local instance left in its process group `group` (Ray's
    DashboardAgent and RuntimeEnvAgent outlive their raylet for over a minute, and ignore SIGTERM), and only those:
    a process of the group that is not Ray's (a shell pipeline's `tee`) is left alone. Does nothing while the
    group's leader (the driver) lives. Linux only (/proc); returns how many were killed."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(group, 0)
        return 0  # the driver lives (or its pid is another process's now)
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(entry.name)
            if pid == os.getpid() or os.getpgid(pid) != group:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if command.startswith(_RAY_PROCESS_NAMES) or "/site-packages/ray/" in command:
                os.kill(pid, signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):  # gone meanwhile, or not ours to signal
            continue
    return killed


def _in_terminal_foreground(group: int) -> bool:
    try:
        with open("/dev/tty") as tty:
            return os.tcgetpgrp(tty.fileno()) == group
    except OSError:  # no controlling terminal
        return False


def joined_a_cluster() -> bool:
    """Whether start() joined the cluster at $RAY_ADDRESS rather than starting a local instance."""
    return bool(os.environ.get("RAY_ADDRESS"))


def cluster() -> Cluster:
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0.0)
    nodes = tuple((node["Resources"].get("CPU", 0.0), node["Resources"].get("GPU", 0.0))
                  for node in ray.nodes() if node.get("Alive"))
    return Cluster(cpus=resources.get("CPU", 0.0), gpus=gpus, gpu_memory=gpu_memory() if gpus else None, nodes=nodes)


def gpu_memory() -> int | None:
    """The smallest GPU's memory in bytes, read with nvidia-smi on this machine (None where it has none: on a
    cluster whose head node has no GPU, resources.ASSUMED_GPU_MEMORY is assumed)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        mebibytes = [int(line) for line in output.split() if line.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return min(mebibytes) * 2**20 if mebibytes else None


def stop_in_background() -> None:
    """ray.shutdown() stops Ray's processes one by one (1-1.5 s): let it run while the driver settles the run;
    wait_stopped() waits for it."""
    global _stopping
    _stopping = threading.Thread(target=ray.shutdown, name="ray-shutdown")
    _stopping.start()


def wait_stopped() -> None:
    global _stopping
    if _stopping is not None:
        _stopping.join()
        _stopping = None
