"""What every `tuner` command shares: one line per error and the exit codes (0 success, 1 a run failed, 2 bad
input, 130 interrupted by Ctrl-C, 143 stopped by SIGTERM), SIGTERM handled as Ctrl-C, and the options `run` and
`submit` both take."""

from __future__ import annotations

import contextlib
import functools
import signal
from pathlib import Path
from typing import Callable, Iterator

import typer

from tuner.errors import TunerError

DataDirOption = typer.Option(
    None, "--data-dir", help="Folder with the raw dataset files (else TUNER_DATA_DIR, else the user cache)."
)
SetOption = typer.Option([], "--set", help="Override a spec value: key.path=value (a bare hyperparameter means fixed.<name>).")


_sigterm_received = False


def _stop_like_ctrl_c(signum, frame) -> None:
    """SIGTERM (a batch scheduler, `timeout`, a container runtime) does what Ctrl-C does: whoever handles SIGINT
    now (Ray Tune during a run: save the experiment and return; Python elsewhere: KeyboardInterrupt) handles it."""
    global _sigterm_received
    _sigterm_received = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM does what Ctrl-C does (and is remembered, for exit code 143)."""
    global _sigterm_received
    _sigterm_received = False
    previous_handler = signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def interrupted_exit_code() -> int:
    return 128 + signal.SIGTERM if _sigterm_received else 130


def handle_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TunerError as exc:
            for line in str(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            if exc.filename is None:
                raise
            # a path given on the command line that cannot be read or written (a missing folder, a file for a folder)
            typer.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(interrupted_exit_code()) from None

    return wrapper


SMOKE_OVERRIDES = [
    "search.num_samples=2",
    "fixed.epochs=2",
    "fixed.eval_every=1",
    "scheduler.grace_period=1",
    "scheduler.max_epochs=null",
]
NameOption = typer.Option(None, help="Experiment name (default: the spec's name).")
NumSamplesOption = typer.Option(None, help="Number of trials.")
MaxConcurrentOption = typer.Option(
    None, help="Trials running at once (default: the spec's search.max_concurrent, auto: what the machine runs at once)."
)
SmokeOption = typer.Option(False, "--smoke", help="2 trials x 2 epochs, as <name>-smoke: a quick end-to-end check.")


def run_overrides(spec: Path, name, storage, num_samples, max_concurrent, smoke: bool, overrides: list[str]) -> list[str]:
    """The --set overrides that `tuner run`'s own options stand for (shared by run and submit)."""
    from tuner.spec import read_spec

    options = [
        *(SMOKE_OVERRIDES if smoke else []),
        *([f"name={name}"] if name else []),
        *([f"storage={storage}"] if storage else []),
        *([f"search.num_samples={num_samples}"] if num_samples is not None else []),
        *([f"search.max_concurrent={max_concurrent}"] if max_concurrent is not None else []),
        *overrides,
    ]
    if smoke:
        options.append(f"name={read_spec(spec, options).name}-smoke")
    return options
