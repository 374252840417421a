"""The `tuner` command line: parse arguments, call one function, render results and errors.

Exit codes: 0 success, 1 a run failed (e.g. training diverged), 2 bad input, 130 interrupted (Ctrl-C), 143 stopped
by SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import typer

from tuner.errors import ExperimentError, TunerError, UsageError
from tuner.vocabulary import SUBMITTED_WITH_ENV

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)

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
def _sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM does what Ctrl-C does (and is remembered, for exit code 143)."""
    global _sigterm_received
    _sigterm_received = False
    previous_handler = signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _interrupted_exit_code() -> int:
    return 128 + signal.SIGTERM if _sigterm_received else 130


def _handle_errors(command: Callable) -> Callable:
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
            raise typer.Exit(_interrupted_exit_code()) from None

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
    experiment = load_spec(spec, overrides, fixing_wins=True)
    if experiment.params:
        typer.echo(f"note: {', '.join(experiment.params)} are searched by this spec; `tuner train` uses their "
                   "defaults (set them with --set, or train `tuner best`'s output)", err=True)
    if threads:
        torch.set_num_threads(threads)
    header_printed: list[bool] = []

    def show(result):
        if not header_printed:
            typer.echo(epoch_header(experiment))
            header_printed.append(True)
        typer.echo(epoch_row(experiment, result))

    try:
        with _sigterm_stops_like_ctrl_c():
            outcome = run_training(experiment, data_dir, device, on_epoch=show, checkpoint=checkpoint,
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


def _run_overrides(spec: Path, name, storage, num_samples, max_concurrent, smoke: bool, overrides: list[str]) -> list[str]:
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


@app.command()
@_handle_errors
def run(
    spec: Path = typer.Argument(..., help="Search-space YAML."),
    name: Optional[str] = NameOption,
    storage: Optional[str] = typer.Option(None, help="Where experiments are written (default: the spec's storage, ./runs)."),
    num_samples: Optional[int] = NumSamplesOption,
    max_concurrent: Optional[int] = MaxConcurrentOption,
    overrides: List[str] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    fresh: bool = typer.Option(False, "--fresh", help="Delete an existing experiment of this name and start over."),
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
    with _sigterm_stops_like_ctrl_c():
        if sum([fresh, resume_errored, restart_errored]) > 1:
            raise UsageError("--fresh, --resume-errored, --restart-errored: use at most one of them")
        options = _run_overrides(spec, name, storage, num_samples, max_concurrent, smoke, overrides)
        experiment = load_spec(spec, options)
        if submitted := os.environ.get(SUBMITTED_WITH_ENV):  # a job `tuner submit` started
            from tuner.tuning.cluster import check_submitter_versions

            if note := check_submitter_versions(submitted):
                typer.echo(note)
        summary = run_experiment(experiment, str(data_dir) if data_dir else None, fresh, resume_errored, restart_errored)
        typer.echo(run_summary_text(summary))
    raise typer.Exit(_interrupted_exit_code() if summary.interrupted else summary.exit_code)


@app.command()
@_handle_errors
def validate(spec: Path = typer.Argument(..., help="Search-space YAML."), overrides: List[str] = SetOption) -> None:
    """Check a spec without running anything."""
    from tuner.spec_loader import load_spec

    experiment = load_spec(spec, overrides)
    searched = ", ".join(experiment.params) or "nothing (a single configuration)"
    typer.echo(f"{spec}: valid — {experiment.model} on {experiment.dataset.name}, searching {searched}")


@app.command()
def schema() -> None:
    """Print the JSON schema of the spec format (for editors: yaml-language-server)."""
    import json

    from tuner.spec import ExperimentSpec

    typer.echo(json.dumps(ExperimentSpec.model_json_schema(), indent=2))


@app.command()
@_handle_errors
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
@_handle_errors
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
@_handle_errors
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


AddressOption = typer.Option("http://127.0.0.1:8265", "--address", help="Ray dashboard / Jobs API address.")
InsecureOption = typer.Option(False, "--allow-insecure", help="Allow plain http to a non-loopback address without token auth.")


@app.command()
@_handle_errors
def submit(
    spec: Path = typer.Argument(..., help="Search-space YAML."),
    address: str = AddressOption,
    storage: Optional[str] = typer.Option(None, help="Storage every node sees: shared path or URI (s3://, gs://)."),
    submission_id: Optional[str] = typer.Option(None, "--submission-id", help="Job id to use (must be new)."),
    name: Optional[str] = NameOption,
    num_samples: Optional[int] = NumSamplesOption,
    max_concurrent: Optional[int] = MaxConcurrentOption,
    smoke: bool = SmokeOption,
    overrides: List[str] = SetOption,
    wait: bool = typer.Option(False, "--wait", help="Stream the job's logs and exit with its exit code."),
    allow_insecure: bool = InsecureOption,
    data_dir: Optional[str] = typer.Option(
        None, "--data-dir", help="Where the job's node finds or downloads the datasets (a path there, or shared)."),
    env: List[str] = typer.Option([], "--env", help="KEY=VALUE: an environment variable for the job and its trials."),
    runtime_env: Optional[Path] = typer.Option(
        None, "--runtime-env", help="YAML or JSON file: Ray's runtime environment for the job (pip, env_vars, ...)."),
) -> None:
    """Submit `tuner run SPEC` to a Ray cluster as a job (the package and the spec are its working dir)."""
    from tuner.tuning import cluster
    from tuner.yaml_loader import read_yaml_file

    variables = {}
    for assignment in env:
        key, equals, value = assignment.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"--env: expected KEY=VALUE with KEY a variable name, got {assignment!r}")
        variables[key] = value
    runtime = read_yaml_file(runtime_env) if runtime_env else {}
    if not isinstance(runtime, dict):
        raise UsageError(f"{runtime_env}: expected a mapping (Ray's runtime environment), got {type(runtime).__name__}")
    options = _run_overrides(spec, name, None, num_samples, max_concurrent, smoke, overrides)
    job_id = cluster.submit(spec, address, storage, submission_id, options, allow_insecure=allow_insecure,
                            data_dir=data_dir, env=variables, runtime_env=runtime)
    typer.echo(job_id)
    if wait:
        jobs = cluster.client(address, allow_insecure)
        with cluster.without_rays_info_lines():
            for chunk in cluster.follow_logs(jobs, job_id):
                typer.echo(chunk, nl=False)
        raise typer.Exit(cluster.exit_code(jobs, job_id))


jobs_app = typer.Typer(no_args_is_help=True, help="List, inspect, follow and stop jobs on a Ray cluster.")
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
@_handle_errors
def jobs_list(address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """Every job: id, status, experiment."""
    from tuner.tuning import cluster

    for job in cluster.client(address, allow_insecure).list_jobs():
        experiment = (job.metadata or {}).get("tuner_experiment", "-")
        typer.echo(f"{job.submission_id or job.job_id}\t{job.status}\t{experiment}")


@jobs_app.command("status")
@_handle_errors
def jobs_status(job_id: str, address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """One job's status."""
    from tuner.tuning import cluster

    cluster.check_job_id(job_id)
    typer.echo(str(cluster.job_info(cluster.client(address, allow_insecure), job_id).status))


@jobs_app.command("logs")
@_handle_errors
def jobs_logs(
    job_id: str,
    address: str = AddressOption,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until the job ends."),
    allow_insecure: bool = InsecureOption,
) -> None:
    """One job's logs."""
    from tuner.tuning import cluster

    cluster.check_job_id(job_id)
    jobs = cluster.client(address, allow_insecure)
    cluster.job_info(jobs, job_id)
    if follow:
        for chunk in cluster.follow_logs(jobs, job_id):
            typer.echo(chunk, nl=False)
    else:
        typer.echo(jobs.get_job_logs(job_id), nl=False)


@jobs_app.command("stop")
@_handle_errors
def jobs_stop(job_id: str, address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """Stop a running job."""
    from tuner.tuning import cluster

    cluster.check_job_id(job_id)
    jobs = cluster.client(address, allow_insecure)
    cluster.job_info(jobs, job_id)
    typer.echo("stopping" if jobs.stop_job(job_id) else "not running")


@app.command()
@_handle_errors
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
@_handle_errors
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
