"""Run `tuner` commands the way most CLI tests do: in this process, through Typer's CliRunner (exit code, stdout
and stderr as a user sees them). Each entry point also has one subprocess smoke test, `tuner_subprocess`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from typer.testing import CliRunner

from tuner.cli import app


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def tuner(*args, cwd=None) -> Outcome:
    """`tuner ARGS` in this process, run from `cwd`; torch's thread count (`--threads`) is put back afterwards."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(here)
        torch = sys.modules.get("torch")
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def tuner_subprocess(*args, cwd=None) -> Outcome:
    """`python -m tuner ARGS` in a fresh process, as a user runs it (without the RAY_AUTH_MODE that a Ray started
    in this test process sets here)."""
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}, "TUNER_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "tuner", *map(str, args)], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=300)
    return Outcome(result.returncode, result.stdout, result.stderr)
