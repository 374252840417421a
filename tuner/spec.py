"""The experiment spec (a YAML file): what to train, on which data, and how results are selected.

The structure of a spec, validated without importing the model (reading a stored experiment needs neither the
model nor torch). `tuner.spec_loader.load_spec(path, overrides)` reads a spec file and also checks it against its
model: the model's own hyperparameters in `fixed` and `params`, and a dry run. Every problem is one line:
`<file>: <field.path>: <message>`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from tuner.errors import SpecError
from tuner.recsys.data.config import DatasetSpec
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.search_space import Frozen, ParamSpec, check_drawable_values
from tuner.vocabulary import Objective, check_model_reference, parse_metric_key
from tuner.yaml_loader import parse_yaml, read_yaml_file

_NOT_SEARCHABLE = {"k", "eval_every", "eval_batch_size", "epochs"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MLFLOW_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")
SEED = Field(ge=0, le=2**32 - 1)  # what numpy's and Optuna's generators take


class WarmStartSpec(Frozen):
    """Start the search with the best finished configurations of another experiment (under the same storage, or a
    folder): they are the first trials this one runs (Optuna's enqueue_trial)."""

    experiment: str
    trials: int = Field(5, ge=1)


class SearchSpec(Frozen):
    sampler: Literal["tpe", "random", "cmaes", "gp", "grid"] = "tpe"
    num_samples: int = Field(20, ge=1)
    max_concurrent: int | Literal["auto"] = "auto"  # auto: what the machine or cluster runs at once
    seed: Annotated[int, SEED] = 0
    warm_start: WarmStartSpec | None = None

    @field_validator("max_concurrent", mode="before")
    @classmethod
    def _auto_or_count(cls, value):
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"expected auto or a whole number of trials >= 1, got {value!r}")
        return value


class SchedulerSpec(Frozen):
    """ASHA on the spec metric, with epochs as time (max_epochs defaults to fixed.epochs)."""

    kind: Literal["none", "asha"] = "asha"
    grace_period: int = Field(10, ge=1)
    reduction_factor: float = Field(3.0, gt=1.0)
    max_epochs: int | None = Field(None, ge=1)


class ResourcesSpec(Frozen):
    """Per trial; `resources: auto` (the default) sizes them to the machine, see tuner/resources.py."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class FailureSpec(Frozen):
    max_failures: int = Field(2, ge=-1)  # retries per trial; -1: unlimited
    checkpoint_every: int = Field(5, ge=1)  # epochs between checkpoints (the last epoch is always saved)


class LoggingSpec(Frozen):
    """Where else every trial is logged. `mlflow: true` logs to <experiment>/mlflow.db (`pip install
    tuner[mlflow]`); a string is an MLflow tracking URI (http://..., sqlite:///..., databricks)."""

    mlflow: bool | str = False

    @field_validator("mlflow")
    @classmethod
    def _tracking_uri(cls, value):
        """A typo here used to surface as a KeyError traceback once the run had started."""
        if not isinstance(value, str):
            return value
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else None
        if not value.strip() or (scheme is not None and scheme not in _MLFLOW_SCHEMES):
            raise ValueError(f"expected true, false or an MLflow tracking URI ({', '.join(s + '://' for s in _MLFLOW_SCHEMES)}"
                             f", databricks, or a local folder), got {value!r}")
        return value


class ExperimentSpec(Frozen):
    name: str
    model: str
    dataset: DatasetSpec = DatasetSpec()
    metric: str = "val/recall@20"
    mode: Literal["max", "min"] = "max"
    fixed: Hyperparameters = Hyperparameters()
    params: dict[str, ParamSpec] = {}
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: Literal["auto"] | ResourcesSpec = "auto"
    failure: FailureSpec = FailureSpec()
    logging: LoggingSpec = LoggingSpec()
    storage: str = "runs"
    # ablations
    seeds: list[Annotated[int, SEED]] | None = None  # repeat every grid point with each seed (grid sampler only)
    base: str | None = None  # an experiment (under storage) whose best finished trial fills `fixed`
    baselines: list[Literal["mostpop", "mf"]] = []  # computed on the same split after the trials
    # the folder of the spec file (spec_loader sets it): an import-path model is looked for there first
    _model_folder: str | None = PrivateAttr(None)

    @property
    def model_folder(self) -> str | None:
        return self._model_folder

    @field_validator("resources", mode="before")
    @classmethod
    def _auto_or_mapping(cls, value):
        if value == "auto" or isinstance(value, ResourcesSpec):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected auto or a mapping {{cpu: N, gpu: N}} per trial, got {value!r}")
        try:
            return ResourcesSpec.model_validate(value)
        except ValidationError as exc:  # one line per problem, named inside resources (not per union member)
            raise ValueError("; ".join(format_errors(exc))) from None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value) or value in (".", ".."):
            raise ValueError(
                f"{value!r} is not a safe directory name: use letters, digits, '.', '_' and '-' (at most 100)"
            )
        if value.endswith(".lock"):  # <storage>/<name>.lock is the lock of the experiment <name>
            raise ValueError(f"{value!r}: a name ending in .lock is the lock file of experiment {value[:-5]!r}")
        return value

    @field_validator("model")
    @classmethod
    def _model_reference(cls, value: str) -> str:
        return check_model_reference(value)  # which class it names, and what it takes: spec_loader checks

    @field_validator("metric")
    @classmethod
    def _metric_form(cls, value: str) -> str:
        key = parse_metric_key(value)  # its ValueError names the form expected
        if key.split != "val":
            raise ValueError(f"{value!r}: model selection uses validation only; use val/{key.metric}@{key.k}")
        return value

    @model_validator(mode="after")
    def _metric_k_is_evaluated(self) -> "ExperimentSpec":
        k = parse_metric_key(self.metric).k
        if k not in self.fixed.k:
            raise ValueError(f"metric: {self.metric} uses K={k}, which is not among fixed.k {list(self.fixed.k)}")
        for name, param in self.params.items():
            if name in _NOT_SEARCHABLE:
                raise ValueError(f"params.{name}: not a searchable hyperparameter (it sets how training is run and "
                                 f"measured); set fixed.{name} instead")
            if name in self.fixed.model_fields_set:
                raise ValueError(f"params.{name}: is also set in fixed; a value is either searched or fixed")
            if name in Hyperparameters.model_fields:  # a model's own names are checked against the model
                check_drawable_values(name, param, Hyperparameters)
            if self.search.sampler == "grid":
                try:
                    param.grid_values()
                except ValueError as exc:
                    raise ValueError(f"params.{name}.{exc}") from None
        if self.scheduler.max_epochs is not None and self.scheduler.max_epochs > self.fixed.epochs:
            raise ValueError(
                f"scheduler.max_epochs: {self.scheduler.max_epochs} is more than fixed.epochs ({self.fixed.epochs})"
            )
        if self.seeds is not None:
            if self.search.sampler != "grid":
                raise ValueError("seeds: repeating every value over seeds needs search.sampler: grid")
            if not self.seeds or len(set(self.seeds)) != len(self.seeds):
                raise ValueError(f"seeds: expected a non-empty list of distinct seeds, got {self.seeds}")
            if "seed" in self.params or "seed" in self.fixed.model_fields_set:
                raise ValueError("seeds: the seed is then searched; remove it from params and fixed")
        if self.base is not None and not _SAFE_NAME.match(self.base):
            raise ValueError(f"base: {self.base!r} is not an experiment name")
        if self.params and self.dataset.split.val == 0:
            raise ValueError("dataset.split.val: tuning selects on validation; it needs val > 0")
        return self

    def searched(self) -> dict[str, ParamSpec]:
        """What the search samples: `params`, plus the seed when `seeds` repeats every grid point."""
        if self.seeds is None:
            return dict(self.params)
        return {**self.params, "seed": ParamSpec(type="categorical", choices=list(self.seeds))}

    def ablated(self) -> list[str]:
        """The factors of an ablation (a grid experiment): its searched names other than the seed."""
        return [name for name in self.params] if self.search.sampler == "grid" else []

    def trial_hyperparameters(self, sampled: dict[str, Any]) -> Hyperparameters:
        """The fixed block with one trial's sampled values filled in."""
        return Hyperparameters.model_validate({**self.fixed.model_dump(exclude_unset=True), **sampled})

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.mode)

    def scheduler_note(self) -> str | None:
        """What to say when ASHA is asked for but can stop no trial (its grace period is not below the epochs a trial
        runs: a spec whose epochs were lowered for a quick run); None otherwise."""
        epochs = self.scheduler.max_epochs or self.fixed.epochs
        if self.scheduler.kind != "asha" or "epochs" in self.params or self.scheduler.grace_period < epochs:
            return None
        return (f"note: scheduler.grace_period {self.scheduler.grace_period} is not below the {epochs} epochs a trial "
                "runs: ASHA stops no trial in this run")

    def trial_count(self) -> int:
        """How many trials the experiment runs: every grid point once under the grid sampler, else num_samples."""
        return self.grid_size() if self.search.sampler == "grid" else self.search.num_samples

    def grid_size(self) -> int:
        size = 1
        for param in self.searched().values():
            size *= len(param.grid_values())
        return size


def read_spec(path: str | Path, overrides: Sequence[str] = (), fixing_wins: bool = False) -> ExperimentSpec:
    """The spec file with `--set` overrides, structurally validated (the model is not imported: spec_loader does
    that). `fixing_wins` (`tuner train`, which trains one configuration): an override that fixes a searched
    hyperparameter takes it out of `params` rather than being an error."""
    path = Path(path)
    raw = read_yaml_file(path)
    if raw is None:
        raise SpecError(f"{path}: is empty; expected a mapping with at least name and model")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for override in overrides:
        parts = apply_override(raw, override)
        if fixing_wins and len(parts) == 2 and parts[0] == "fixed" and isinstance(raw.get("params"), dict):
            raw["params"].pop(parts[1], None)
    return validate_spec(raw, str(path))


def validate_spec(raw: dict, source: str) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError("\n".join(f"{source}: {line}" for line in format_errors(exc))) from None


def format_errors(exc: ValidationError) -> list[str]:
    """One `field.path: message` line per pydantic error."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        if loc and message.startswith(f"{loc}."):  # the message names a field inside the block itself
            loc = ""
        lines.append(f"{loc}: {message}" if loc else message)  # model-level messages name their fields
    return lines


def apply_override(raw: dict, override: str) -> list[str]:
    """`key.path=value` (value parsed as YAML) into the raw spec; a bare name that is not a top-level key means
    fixed.<name> (a hyperparameter: the model's own ones included). Returns the path that was set."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise SpecError(f"--set {override!r}: expected key=value, e.g. fixed.lr=0.01")
    parts = key.split(".")
    if len(parts) == 1 and parts[0] not in ExperimentSpec.model_fields:
        parts = ["fixed", parts[0]]
    target: Any = raw
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"--set {key}: {part} is not a mapping")
        target = node
    target[parts[-1]] = parse_yaml(text, f"--set {key}")
    return parts
