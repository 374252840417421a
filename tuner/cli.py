"""The `tuner` command line: parse arguments, call one function, render results and errors.

Exit codes: 0 success, 1 a run failed (e.g. training diverged), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer

from tuner.errors import TunerError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)

DataDirOption = typer.Option(None, "--data-dir", help="Folder with the raw dataset files (else TUNER_DATA_DIR, else the user cache).")
SetOption = typer.Option([], "--set", help="Override a spec value: key.path=value (a bare hyperparameter means fixed.<name>).")


def _handle_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TunerError as exc:
            for line in str(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@_handle_errors
def train(
    spec: Path = typer.Argument(..., help="Experiment YAML (its `fixed` block is the configuration)."),
    overrides: List[str] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads (default: torch's choice)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write every epoch and the result as JSON."),
) -> None:
    """Train one configuration without Ray; print each epoch and the metrics at the best-validation epoch."""
    import torch

    from tuner.render import epoch_header, epoch_row, final_table
    from tuner.spec import load_spec
    from tuner.train_command import train as run_training
    from tuner.train_command import write_outcome_json

    experiment = load_spec(spec, overrides)
    if threads:
        torch.set_num_threads(threads)
    header_printed = []

    def show(result):
        if not header_printed:
            typer.echo(epoch_header(experiment))
            header_printed.append(True)
        typer.echo(epoch_row(experiment, result))

    outcome = run_training(experiment, data_dir, device, on_epoch=show)
    typer.echo(final_table(outcome))
    if output:
        write_outcome_json(outcome, output)
        typer.echo(f"wrote {output}")


@app.command()
@_handle_errors
def datasets(data_dir: Optional[Path] = DataDirOption) -> None:
    """List the datasets tuner knows and whether their raw files are present."""
    from tuner.data import DATASETS
    from tuner.data.download import dataset_folder, default_data_dir, missing_files

    root = data_dir or default_data_dir()
    typer.echo(f"data directory: {root}")
    for source in DATASETS.values():
        if source.folder is None:
            state = "generated" if source.name == "synthetic" else "dataset.path"
        else:
            folder = dataset_folder(source, root, None)
            missing = missing_files(source, folder)
            state = "present" if not missing else f"missing ({source.download_url})"
        typer.echo(f"  {source.name:<24} {state:<14.14} {source.description}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
