"""The `tuner` command line: parse arguments, call one function, render results and errors (tuner.cli.common: one
line per error, the exit codes). `submit` and `jobs` are in tuner.cli.jobs."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import List, Optional

import typer

from tuner.cli import jobs
from tuner.cli.common import (
    DataDirOption,
    MaxConcurrentOption,
    NameOption,
    NumSamplesOption,
    SetOption,
    SmokeOption,
    handle_errors,
    interrupted_exit_code,
    run_overrides,
    sigterm_stops_like_ctrl_c,
)
from tuner.errors import ExperimentError, UsageError
from tuner.vocabulary import SUBMITTED_WITH_ENV

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.command()
@handle_errors
def train(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Experiment YAML (its `fixed` block is the configuration)."),
    overrides: List[str] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads (default: torch's choice)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write every epoch and the result as JSON."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Save the run's state here every failure.checkpoint_every epochs; if the file "
        "exists, continue from it (Ctrl-C, SIGTERM or a crash lose at most those epochs)."),
) -> None:
    """Train one configuration without Ray; print each epoch and the metrics at the best-validation epoch."""
    import torch

    from tuner.console import epoch_header, epoch_row, final_table
    from tuner.spec_loader import load_spec
    from tuner.train_command import train as run_training
    from tuner.train_command import write_outcome_json

    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device: expected auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device: cuda asked for, but this torch ({torch.__version__}) sees no CUDA device; use auto or cpu")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads: expected a number of threads >= 1, got {threads}")
    spec = load_spec(spec_file, overrides, fixing_wins=True)
    if spec.params:
        typer.echo(f"note: {', '.join(spec.params)} are searched by this spec; `tuner train` uses their "
                   "defaults (set them with --set, or train `tuner best`'s output)", err=True)
    if threads:
        torch.set_num_threads(threads)
    header_printed: list[bool] = []

    def show(result):
        if not header_printed:
            typer.echo(epoch_header(spec))
            header_printed.append(True)
        typer.echo(epoch_row(spec, result))

    try:
        with sigterm_stops_like_ctrl_c():
            outcome = run_training(spec, data_dir, device, on_epoch=show, checkpoint=checkpoint,
                                   on_data=lambda data: typer.echo(data.summary()))
    except KeyboardInterrupt:
        if checkpoint is not None and checkpoint.exists():
            typer.echo(f"the same command continues from the last checkpoint in {checkpoint}", err=True)
        raise
    typer.echo(final_table(outcome))
    if outcome.epochs and outcome.epochs[-1].collapsed:
        typer.echo(f"note: training collapsed at epoch {outcome.epochs[-1].epoch}: its BPR loss sat at ln 2, so the model "
                   "scores every item alike (its embeddings shrank to nothing); more epochs would not change it. A "
                   "smaller weight decay or a larger learning rate may help", err=True)
    if output:
        write_outcome_json(outcome, output)
        typer.echo(f"wrote {output}")


@app.command()
@handle_errors
def run(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Search-space YAML."),
    name: Optional[str] = NameOption,
    storage: Optional[str] = typer.Option(None, help="Where experiments are written (default: the spec's storage, ./runs)."),
    num_samples: Optional[int] = NumSamplesOption,
    max_concurrent: Optional[int] = MaxConcurrentOption,
    overrides: List[str] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    fresh: bool = typer.Option(False, "--fresh", help="Delete an existing spec of this name and start over."),
    resume_errored: bool = typer.Option(
        False, "--resume-errored", help="On resume, retry errored trials from their checkpoints."
    ),
    restart_errored: bool = typer.Option(False, "--restart-errored", help="On resume, restart errored trials from scratch."),
    smoke: bool = SmokeOption,
) -> None:
    """Tune the spec's search space with Ray Tune + Optuna (resumes an existing experiment of the same name)."""
    from tuner import timeline
    from tuner.console import run_summary_text
    from tuner.spec_loader import load_spec
    from tuner.tuning.run import run_experiment

    timeline.mark("command_start")
    with sigterm_stops_like_ctrl_c():
        if sum([fresh, resume_errored, restart_errored]) > 1:
            raise UsageError("--fresh, --resume-errored, --restart-errored: use at most one of them")
        options = run_overrides(spec_file, name, storage, num_samples, max_concurrent, smoke, overrides)
        spec = load_spec(spec_file, options)
        if submitted := os.environ.get(SUBMITTED_WITH_ENV):  # a job `tuner submit` started
            from tuner.tuning.package_versions import check_submitter_versions

            if note := check_submitter_versions(submitted):
                typer.echo(note)
        summary = run_experiment(spec, str(data_dir) if data_dir else None, fresh, resume_errored, restart_errored)
        typer.echo(run_summary_text(summary))
    raise typer.Exit(interrupted_exit_code() if summary.interrupted else summary.exit_code)


@app.command()
@handle_errors
def validate(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Search-space YAML."), overrides: List[str] = SetOption
) -> None:
    """Check a spec without running anything."""
    from tuner.spec_loader import load_spec

    spec = load_spec(spec_file, overrides)
    searched = ", ".join(spec.params) or "nothing (a single configuration)"
    typer.echo(f"{spec_file}: valid — {spec.model} on {spec.dataset.name}, searching {searched}")


@app.command()
def schema() -> None:
    """Print the JSON schema of the spec format (for editors: yaml-language-server)."""
    import json

    from tuner.spec import ExperimentSpec

    typer.echo(json.dumps(ExperimentSpec.model_json_schema(), indent=2))


@app.command()
@handle_errors
def best(
    experiment: str = typer.Argument(..., help="Experiment name (under --storage) or folder."),
    storage: str = typer.Option("runs", help="Where experiments are written."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the spec here (default: print it)."),
) -> None:
    """Write the best finished trial's configuration as a spec that `tuner train` runs to the same numbers."""
    from tuner.analysis.best_config import best_spec_yaml

    text = best_spec_yaml(_open_experiment(experiment, storage))
    if out:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text, nl=False)


@app.command()
@handle_errors
def records(
    experiment: str = typer.Argument(..., help="Experiment name (under --storage) or folder."),
    storage: str = typer.Option("runs", help="Where experiments are written."),
    format: str = typer.Option("csv", "--format", help="csv or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: CSV to standard output)."),
) -> None:
    """Export the records, one row per (trial, epoch)."""

    if format not in ("csv", "parquet"):
        raise UsageError(f"--format: expected csv or parquet, got {format!r}")
    if format == "parquet" and out is None:
        raise UsageError("--format parquet needs --out FILE")
    if out is not None and not out.absolute().parent.is_dir():
        raise UsageError(f"--out: {out.absolute().parent} is not a folder")
    opened = _open_experiment(experiment, storage)
    frame = opened.records
    if frame.empty:
        raise ExperimentError(f"{experiment}: no records found under {opened.directory}")
    if format == "parquet":
        frame.to_parquet(out, index=False)
    elif out:
        frame.to_csv(out, index=False)
    else:
        typer.echo(frame.to_csv(index=False), nl=False)


@app.command()
@handle_errors
def report(
    experiment: str = typer.Argument(..., help="Experiment name (under --storage) or folder."),
    storage: str = typer.Option("runs", help="Where experiments are written."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Report folder (default: <experiment>/report; ./<name>-report for a URI)."
    ),
) -> None:
    """Write report.md, report.html, plots/*.png and tables/*.csv from the experiment's records (no Ray needed)."""
    from tuner.analysis.report import write_report

    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file; expected a folder for the report")
    folder = write_report(_open_experiment(experiment, storage), str(out) if out else None)
    typer.echo(f"wrote {folder / 'report.md'}, {folder / 'report.html'}, {folder / 'plots'}, {folder / 'tables'}")


def _open_experiment(experiment: str, storage: str):
    """EXPERIMENT on the command line (a folder or URI, else a name under --storage), opened for reading."""
    from tuner.experiment.layout import resolve
    from tuner.experiment.read import Experiment

    return Experiment.open(resolve(experiment, storage))


app.command()(jobs.submit)
app.add_typer(jobs.jobs_app, name="jobs")


@app.command()
@handle_errors
def datasets(data_dir: Optional[Path] = DataDirOption) -> None:
    """List the datasets tuner knows and whether their raw files are present."""
    from tuner.recsys.data import DATASETS
    from tuner.recsys.data.download import dataset_folder, default_data_dir, missing_files

    root = data_dir or default_data_dir()
    typer.echo(f"data directory: {root}")
    for source in DATASETS.values():
        if source.folder is None:
            state = "generated" if source.name == "synthetic" else "dataset.path"
        else:
            folder = dataset_folder(source, root, None)
            missing = missing_files(source, folder)
            state = "present" if not missing else "missing"
        typer.echo(f"  {source.name:<24} {state:<13} {source.description}")
        if source.folder is not None and state == "missing":
            typer.echo(f"  {'':<24} {'':<13} downloaded on first use from {source.download_url}")


@app.command()
@handle_errors
def models(
    names: List[str] = typer.Argument(None, help="Models to describe: registered names or import paths "
                                      "package.module:Class (default: every registered model)."),
) -> None:
    """List the models tuner can train (built-in and installed) with their own hyperparameters: type, default, bounds."""
    from tuner.recsys.models import locate
    from tuner.recsys.models.contract import describe
    from tuner.recsys.models.registry import registered

    for name in names or sorted(registered()):
        source = locate(name)
        model_class = source.load()
        where = f"{source.distribution} {source.version}" if source.distribution else source.origin()["file"]
        typer.echo(f"{name}  ({source.target}, {where})")
        for parameter, kind, default, bounds in describe(model_class):
            typer.echo(f"    {parameter:<20} {kind:<6} default {default!s:<10} {bounds}".rstrip())


def main() -> None:  # pragma: no cover - console entry point
    """The `tuner` command (and `python -m tuner`)."""
    try:
        app()
    finally:
        # The command has written and closed everything. With torch, Ray, pandas and Optuna loaded, the interpreter's
        # last garbage collections at exit walk millions of objects (about a second after `tuner run`); frozen
        # objects are skipped, and the operating system reclaims their memory. Exit handlers still run.
        gc.freeze()
