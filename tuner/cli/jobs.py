"""`tuner submit` and `tuner jobs`: a spec run as a job on a Ray cluster, and the cluster's jobs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tuner.cli.common import (
    MaxConcurrentOption,
    NameOption,
    NumSamplesOption,
    SetOption,
    SmokeOption,
    handle_errors,
    run_overrides,
)
from tuner.errors import UsageError

AddressOption = typer.Option("http://127.0.0.1:8265", "--address", help="Ray dashboard / Jobs API address.")
InsecureOption = typer.Option(False, "--allow-insecure", help="Allow plain http to a non-loopback address without token auth.")


@handle_errors
def submit(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Search-space YAML."),
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
    from tuner.tuning import ray_jobs
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
    options = run_overrides(spec_file, name, None, num_samples, max_concurrent, smoke, overrides)
    job_id = ray_jobs.submit(spec_file, address, storage, submission_id, options, allow_insecure=allow_insecure,
                            data_dir=data_dir, env=variables, runtime_env=runtime)
    typer.echo(job_id)
    if wait:
        jobs = ray_jobs.client(address, allow_insecure)
        with ray_jobs.without_rays_info_lines():
            for chunk in ray_jobs.follow_logs(jobs, job_id):
                typer.echo(chunk, nl=False)
        raise typer.Exit(ray_jobs.exit_code(jobs, job_id))


jobs_app = typer.Typer(no_args_is_help=True, help="List, inspect, follow and stop jobs on a Ray cluster.")


@jobs_app.command("list")
@handle_errors
def jobs_list(address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """Every job: id, status, experiment."""
    from tuner.tuning import ray_jobs

    for job in ray_jobs.client(address, allow_insecure).list_jobs():
        experiment = (job.metadata or {}).get("tuner_experiment", "-")
        typer.echo(f"{job.submission_id or job.job_id}\t{job.status}\t{experiment}")


@jobs_app.command("status")
@handle_errors
def jobs_status(job_id: str, address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """One job's status."""
    from tuner.tuning import ray_jobs

    ray_jobs.check_job_id(job_id)
    typer.echo(str(ray_jobs.job_info(ray_jobs.client(address, allow_insecure), job_id).status))


@jobs_app.command("logs")
@handle_errors
def jobs_logs(
    job_id: str,
    address: str = AddressOption,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until the job ends."),
    allow_insecure: bool = InsecureOption,
) -> None:
    """One job's logs."""
    from tuner.tuning import ray_jobs

    ray_jobs.check_job_id(job_id)
    jobs = ray_jobs.client(address, allow_insecure)
    ray_jobs.job_info(jobs, job_id)
    if follow:
        for chunk in ray_jobs.follow_logs(jobs, job_id):
            typer.echo(chunk, nl=False)
    else:
        typer.echo(jobs.get_job_logs(job_id), nl=False)


@jobs_app.command("stop")
@handle_errors
def jobs_stop(job_id: str, address: str = AddressOption, allow_insecure: bool = InsecureOption) -> None:
    """Stop a running job."""
    from tuner.tuning import ray_jobs

    ray_jobs.check_job_id(job_id)
    jobs = ray_jobs.client(address, allow_insecure)
    ray_jobs.job_info(jobs, job_id)
    typer.echo("stopping" if jobs.stop_job(job_id) else "not running")
