"""logging.mlflow: every trial as an MLflow run. Its own module because importing Ray's MLflow callback imports MLflow
(about a second of a run's start-up): tuning.search imports it only for a spec that asks for MLflow."""

from __future__ import annotations

import importlib.util
import os

from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback

from tuner import storage
from tuner.errors import SpecError
from tuner.spec import ExperimentSpec


class MetricNamesForMLflow(MLflowLoggerCallback):
    """Ray's MLflow callback (one MLflow run per trial); MLflow refuses '@' in metric names, so val/recall@20 is
    logged as val/recall_at_20."""

    def log_trial_result(self, iteration, trial, result):
        super().log_trial_result(iteration, trial, {k.replace("@", "_at_"): v for k, v in result.items()})


def mlflow_tracking_uri(spec: ExperimentSpec, experiment_dir: str) -> str | None:
    """logging.mlflow: the tracking URI to log to (true: an SQLite store in the experiment folder), or None."""
    if spec.logging.mlflow is False:
        return None
    if isinstance(spec.logging.mlflow, str):
        return spec.logging.mlflow
    if storage.is_uri(experiment_dir):
        raise SpecError(f"logging.mlflow: {experiment_dir} is not a local folder, so it cannot hold mlflow.db; "
                        "give a tracking URI (http://..., sqlite:///...) instead of true")
    return f"sqlite:///{os.path.join(experiment_dir, 'mlflow.db')}"


def mlflow_callbacks(spec: ExperimentSpec, experiment_dir: str) -> list[tune.Callback]:
    """One MLflow run per trial (its configuration and every reported metric) in the MLflow experiment named after
    this one."""
    uri = mlflow_tracking_uri(spec, experiment_dir)
    if uri is None:
        return []
    if importlib.util.find_spec("mlflow") is None:
        raise SpecError("logging.mlflow: MLflow is not installed; pip install 'tuner[mlflow]'")
    if uri.startswith(("http://", "https://")):
        _check_reachable(uri)
    return [MetricNamesForMLflow(tracking_uri=uri, experiment_name=spec.name, save_artifact=False,
                                 tags={"tuner.model": spec.model, "tuner.dataset": spec.dataset.name})]


def _check_reachable(uri: str) -> None:
    """A tracking server that is down made every trial's logger retry for minutes, then fail with a traceback: one
    quick request (no retries, 10 s) before any trial starts says so in one line instead."""
    from mlflow import MlflowClient

    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # what MLflow raises for a refused connection, a timeout, a wrong URL or token
        reason = str(exc).split(" failed with exception ")[-1].splitlines()[0][:300]
        raise SpecError(f"logging.mlflow: {uri} cannot be reached ({reason}); start the tracking server, or set "
                        "logging.mlflow: true to log into the experiment folder") from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


